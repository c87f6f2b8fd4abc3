// GGUF v3 writer. Metadata is encoded in memory (it is small); tensor data is pulled from
// each tensor's producer one at a time and streamed to disk, so writing a model costs the
// memory of its largest tensor, not of the whole file. The file appears atomically (rename).
import { open, rename, rm } from "node:fs/promises";

import { byteSize, GGMLType, TYPE_INFO } from "./quantize.js";

export enum GGUFValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

export type GGUFNumberType = Exclude<GGUFValueType, GGUFValueType.BOOL | GGUFValueType.STRING | GGUFValueType.ARRAY>;
export type GGUFItem = number | bigint | boolean | string | GGUFArray;

/** A GGUF array: every element of `itemType` (nested arrays are GGUFArray values). */
export interface GGUFArray {
  itemType: GGUFValueType;
  values: readonly GGUFItem[];
}

export type GGUFMetaValue =
  | { type: GGUFNumberType; value: number | bigint }
  | { type: GGUFValueType.BOOL; value: boolean }
  | { type: GGUFValueType.STRING; value: string }
  | { type: GGUFValueType.ARRAY; value: GGUFArray };

/** Shorthands for typed metadata values. */
export const meta = {
  u8: (v: number): GGUFMetaValue => ({ type: GGUFValueType.UINT8, value: v }),
  i8: (v: number): GGUFMetaValue => ({ type: GGUFValueType.INT8, value: v }),
  u16: (v: number): GGUFMetaValue => ({ type: GGUFValueType.UINT16, value: v }),
  i16: (v: number): GGUFMetaValue => ({ type: GGUFValueType.INT16, value: v }),
  u32: (v: number): GGUFMetaValue => ({ type: GGUFValueType.UINT32, value: v }),
  i32: (v: number): GGUFMetaValue => ({ type: GGUFValueType.INT32, value: v }),
  u64: (v: number | bigint): GGUFMetaValue => ({ type: GGUFValueType.UINT64, value: v }),
  i64: (v: number | bigint): GGUFMetaValue => ({ type: GGUFValueType.INT64, value: v }),
  f32: (v: number): GGUFMetaValue => ({ type: GGUFValueType.FLOAT32, value: v }),
  f64: (v: number): GGUFMetaValue => ({ type: GGUFValueType.FLOAT64, value: v }),
  bool: (v: boolean): GGUFMetaValue => ({ type: GGUFValueType.BOOL, value: v }),
  str: (v: string): GGUFMetaValue => ({ type: GGUFValueType.STRING, value: v }),
  array: (itemType: GGUFValueType, values: readonly GGUFItem[]): GGUFMetaValue => ({
    type: GGUFValueType.ARRAY,
    value: { itemType, values },
  }),
};

/** Produces a tensor's encoded bytes, whole or in chunks, when the writer reaches it. */
export type TensorProducer = () => Uint8Array | Iterable<Uint8Array>;

interface PendingTensor {
  name: string;
  shape: number[]; // ggml order: shape[0] is the row length
  type: GGMLType;
  nbytes: number;
  produce: TensorProducer;
}

const GGUF_MAGIC = 0x46554747;
const GGUF_VERSION = 3;

/** Growable little-endian byte buffer for the header. */
class ByteSink {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  u8(v: number): void { this.buf.writeUInt8(v, this.reserve(1)); }
  i8(v: number): void { this.buf.writeInt8(v, this.reserve(1)); }
  u16(v: number): void { this.buf.writeUInt16LE(v, this.reserve(2)); }
  i16(v: number): void { this.buf.writeInt16LE(v, this.reserve(2)); }
  u32(v: number): void { this.buf.writeUInt32LE(v, this.reserve(4)); }
  i32(v: number): void { this.buf.writeInt32LE(v, this.reserve(4)); }
  u64(v: number | bigint): void { this.buf.writeBigUInt64LE(BigInt(v), this.reserve(8)); }
  i64(v: number | bigint): void { this.buf.writeBigInt64LE(BigInt(v), this.reserve(8)); }
  f32(v: number): void { this.buf.writeFloatLE(v, this.reserve(4)); }
  f64(v: number): void { this.buf.writeDoubleLE(v, this.reserve(8)); }
  str(s: string): void {
    const n = Buffer.byteLength(s, "utf8");
    this.u64(n);
    this.buf.write(s, this.reserve(n), n, "utf8");
  }
  pad(alignment: number): void {
    this.reserve((alignment - (this.length % alignment)) % alignment); // Buffer.alloc zero-fills
  }
  bytes(): Buffer { return this.buf.subarray(0, this.length); }
}

function expect(ok: boolean, msg: string): void {
  if (!ok) throw new Error(msg);
}

function writeItem(sink: ByteSink, type: GGUFValueType, v: GGUFItem, key: string): void {
  const num = () => {
    expect(typeof v === "number" || typeof v === "bigint", `metadata '${key}': expected a number, got ${typeof v}`);
    return v as number | bigint;
  };
  switch (type) {
    case GGUFValueType.UINT8: return sink.u8(Number(num()));
    case GGUFValueType.INT8: return sink.i8(Number(num()));
    case GGUFValueType.UINT16: return sink.u16(Number(num()));
    case GGUFValueType.INT16: return sink.i16(Number(num()));
    case GGUFValueType.UINT32: return sink.u32(Number(num()));
    case GGUFValueType.INT32: return sink.i32(Number(num()));
    case GGUFValueType.UINT64: return sink.u64(num());
    case GGUFValueType.INT64: return sink.i64(num());
    case GGUFValueType.FLOAT32: return sink.f32(Number(num()));
    case GGUFValueType.FLOAT64: return sink.f64(Number(num()));
    case GGUFValueType.BOOL:
      expect(typeof v === "boolean", `metadata '${key}': expected a boolean`);
      return sink.u8(v ? 1 : 0);
    case GGUFValueType.STRING:
      expect(typeof v === "string", `metadata '${key}': expected a string`);
      return sink.str(v as string);
    case GGUFValueType.ARRAY: {
      expect(typeof v === "object" && "itemType" in v, `metadata '${key}': expected an array`);
      const arr = v as GGUFArray;
      sink.u32(arr.itemType);
      sink.u64(arr.values.length);
      for (const item of arr.values) writeItem(sink, arr.itemType, item, key);
      return;
    }
    default:
      throw new Error(`metadata '${key}': unknown value type ${type}`);
  }
}

export class GGUFWriter {
  private readonly kv = new Map<string, GGUFMetaValue>();
  private readonly tensors: PendingTensor[] = [];
  private readonly names = new Set<string>();

  /** alignment: of tensor data; a value other than GGUF's default 32 is written as general.alignment. */
  constructor(readonly alignment = 32) {
    expect(alignment > 0 && (alignment & (alignment - 1)) === 0, `alignment ${alignment} is not a power of two`);
    if (alignment !== 32) this.set("general.alignment", meta.u32(alignment));
  }

  set(key: string, value: GGUFMetaValue): this {
    expect(!this.kv.has(key), `duplicate metadata key '${key}'`);
    this.kv.set(key, value);
    return this;
  }

  /** shape in ggml order (row length first); `produce` must yield exactly the encoded size. */
  addTensor(name: string, shape: number[], type: GGMLType, produce: TensorProducer): this {
    expect(!this.names.has(name), `duplicate tensor name '${name}'`);
    expect(shape.length >= 1 && shape.length <= 4, `tensor '${name}': ${shape.length} dimensions (1 to 4)`);
    expect(shape.every((n) => Number.isInteger(n) && n > 0), `tensor '${name}': bad shape [${shape.join(", ")}]`);
    const info = TYPE_INFO[type];
    expect(info !== undefined, `tensor '${name}': unknown type ${type}`);
    expect(shape[0] % info.blockSize === 0,
      `tensor '${name}': row length ${shape[0]} is not a multiple of the ${info.name} block size ${info.blockSize}`);
    const nbytes = byteSize(type, shape.reduce((a, b) => a * b, 1));
    this.names.add(name);
    this.tensors.push({ name, shape: [...shape], type, nbytes, produce });
    return this;
  }

  /** Writes the file; returns its size in bytes. */
  async write(path: string): Promise<number> {
    const header = this.encodeHeader();
    const tmp = `${path}.tmp-${process.pid}`;
    const fh = await open(tmp, "w");
    try {
      let pos = 0;
      const put = async (b: Uint8Array) => {
        let done = 0;
        while (done < b.length) {
          const { bytesWritten } = await fh.write(b, done, b.length - done, pos + done);
          done += bytesWritten;
        }
        pos += b.length;
      };
      await put(header);
      const zeros = new Uint8Array(this.alignment);
      for (const t of this.tensors) {
        const out = t.produce();
        let n = 0;
        for (const chunk of out instanceof Uint8Array ? [out] : out) {
          n += chunk.length;
          expect(n <= t.nbytes, `tensor '${t.name}': producer gave more than ${t.nbytes} bytes`);
          await put(chunk);
        }
        expect(n === t.nbytes, `tensor '${t.name}': producer gave ${n} bytes, expected ${t.nbytes}`);
        await put(zeros.subarray(0, (this.alignment - (pos % this.alignment)) % this.alignment));
      }
      await fh.close();
      await rename(tmp, path);
      return pos;
    } catch (err) {
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw err;
    }
  }

  private encodeHeader(): Buffer {
    const sink = new ByteSink();
    sink.u32(GGUF_MAGIC);
    sink.u32(GGUF_VERSION);
    sink.u64(this.tensors.length);
    sink.u64(this.kv.size);
    for (const [key, v] of this.kv) {
      sink.str(key);
      sink.u32(v.type);
      writeItem(sink, v.type, v.value, key);
    }
    let offset = 0;
    for (const t of this.tensors) {
      sink.str(t.name);
      sink.u32(t.shape.length);
      for (const n of t.shape) sink.u64(n);
      sink.u32(t.type);
      sink.u64(offset);
      offset += Math.ceil(t.nbytes / this.alignment) * this.alignment;
    }
    sink.pad(this.alignment);
    return sink.bytes();
  }
}
