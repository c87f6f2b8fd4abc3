// Minimal GGUF v2/v3 reader for tests and scripts: metadata and tensor infos, read through a
// small window so a large model's weights are never loaded; tensor bytes on request.
// (The engine's own, hardened reader is native/src/gguf.cpp.)
import { closeSync, openSync, readSync } from "node:fs";

import { byteSize, GGMLType, typeInfo } from "./quantize.js";
import { GGUFArray, GGUFItem, GGUFMetaValue, GGUFValueType } from "./writer.js";

export interface GGUFTensorInfo {
  name: string;
  shape: number[]; // ggml order
  type: GGMLType;
  offset: number; // relative to the data section
  nbytes: number;
}

export interface GGUFInfo {
  version: number;
  alignment: number;
  metadata: Map<string, GGUFMetaValue>;
  tensors: GGUFTensorInfo[];
  dataOffset: number; // absolute file offset of the data section
}

/** Sequential little-endian reads from a file descriptor through a refillable window. */
class FileCursor {
  private buf = Buffer.alloc(1 << 20);
  private start = 0; // file offset of buf[0]
  private end = 0; // valid bytes in buf
  pos = 0;

  constructor(private readonly fd: number, private readonly path: string) {}

  private need(n: number): number {
    if (this.pos < this.start || this.pos + n > this.start + this.end) {
      if (n > this.buf.length) this.buf = Buffer.alloc(n);
      this.start = this.pos;
      this.end = readSync(this.fd, this.buf, 0, this.buf.length, this.pos);
      if (n > this.end) throw new Error(`${this.path}: truncated at offset ${this.pos}`);
    }
    const at = this.pos - this.start;
    this.pos += n;
    return at;
  }

  u8() { return this.buf.readUInt8(this.need(1)); }
  i8() { return this.buf.readInt8(this.need(1)); }
  u16() { return this.buf.readUInt16LE(this.need(2)); }
  i16() { return this.buf.readInt16LE(this.need(2)); }
  u32() { return this.buf.readUInt32LE(this.need(4)); }
  i32() { return this.buf.readInt32LE(this.need(4)); }
  u64() { return this.buf.readBigUInt64LE(this.need(8)); }
  i64() { return this.buf.readBigInt64LE(this.need(8)); }
  f32() { return this.buf.readFloatLE(this.need(4)); }
  f64() { return this.buf.readDoubleLE(this.need(8)); }
  str(): string {
    const n = Number(this.u64());
    const at = this.need(n);
    return this.buf.toString("utf8", at, at + n);
  }
}

function readItem(c: FileCursor, type: GGUFValueType): GGUFItem {
  switch (type) {
    case GGUFValueType.UINT8: return c.u8();
    case GGUFValueType.INT8: return c.i8();
    case GGUFValueType.UINT16: return c.u16();
    case GGUFValueType.INT16: return c.i16();
    case GGUFValueType.UINT32: return c.u32();
    case GGUFValueType.INT32: return c.i32();
    case GGUFValueType.UINT64: return c.u64();
    case GGUFValueType.INT64: return c.i64();
    case GGUFValueType.FLOAT32: return c.f32();
    case GGUFValueType.FLOAT64: return c.f64();
    case GGUFValueType.BOOL: return c.u8() !== 0;
    case GGUFValueType.STRING: return c.str();
    case GGUFValueType.ARRAY: {
      const itemType = c.u32() as GGUFValueType;
      const n = Number(c.u64());
      const values: GGUFItem[] = [];
      for (let i = 0; i < n; i++) values.push(readItem(c, itemType));
      return { itemType, values } satisfies GGUFArray;
    }
    default:
      throw new Error(`unknown GGUF value type ${type}`);
  }
}

export function readGGUF(path: string): GGUFInfo {
  const fd = openSync(path, "r");
  try {
    const c = new FileCursor(fd, path);
    if (c.u32() !== 0x46554747) throw new Error(`${path}: not a GGUF file`);
    const version = c.u32();
    if (version !== 2 && version !== 3) throw new Error(`${path}: unsupported GGUF version ${version}`);
    const nTensors = Number(c.u64());
    const nKv = Number(c.u64());
    const metadata = new Map<string, GGUFMetaValue>();
    for (let i = 0; i < nKv; i++) {
      const key = c.str();
      const type = c.u32() as GGUFValueType;
      metadata.set(key, { type, value: readItem(c, type) } as GGUFMetaValue);
    }
    const align = metadata.get("general.alignment");
    const alignment = align ? Number(align.value) : 32;
    const tensors: GGUFTensorInfo[] = [];
    for (let i = 0; i < nTensors; i++) {
      const name = c.str();
      const nDims = c.u32();
      const shape: number[] = [];
      for (let d = 0; d < nDims; d++) shape.push(Number(c.u64()));
      const type = c.u32();
      if (!typeInfo(type)) throw new Error(`${path}: tensor '${name}' has unsupported type ${type}`);
      const offset = Number(c.u64());
      const nbytes = byteSize(type, shape.reduce((a, b) => a * b, 1));
      tensors.push({ name, shape, type, offset, nbytes });
    }
    const dataOffset = Math.ceil(c.pos / alignment) * alignment;
    return { version, alignment, metadata, tensors, dataOffset };
  } finally {
    closeSync(fd);
  }
}

/** The encoded bytes of one tensor. */
export function readTensorBytes(path: string, info: GGUFInfo, tensor: GGUFTensorInfo): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const out = new Uint8Array(tensor.nbytes);
    const n = readSync(fd, out, 0, out.length, info.dataOffset + tensor.offset);
    if (n !== out.length) throw new Error(`${path}: tensor '${tensor.name}' extends past the end of the file`);
    return out;
  } finally {
    closeSync(fd);
  }
}

/** A metadata value as a plain JS value (arrays as arrays), or undefined when absent. */
export function metaValue(info: GGUFInfo, key: string): unknown {
  const v = info.metadata.get(key);
  if (!v) return undefined;
  const plain = (item: GGUFItem): unknown =>
    typeof item === "object" ? (item as GGUFArray).values.map(plain) : item;
  return plain(v.value);
}
