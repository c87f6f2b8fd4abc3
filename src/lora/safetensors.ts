// safetensors writer: 8-byte little-endian header length, a JSON header mapping each tensor
// name to {dtype, shape, data_offsets} (offsets relative to the data section) plus an
// optional "__metadata__" of strings, padded with spaces to 8 bytes, then the data.
import { writeFile } from "node:fs/promises";

export type SafetensorsDtype = "F32" | "F16" | "BF16";

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export interface SafetensorsTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[]; // row-major (torch order)
  data: Uint8Array; // little-endian encoded values
}

/** The file's bytes. */
export function encodeSafetensors(tensors: SafetensorsTensor[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.name === "__metadata__" || t.name in header) throw new Error(`duplicate or reserved tensor name '${t.name}'`);
    if (t.data.length !== n * DTYPE_BYTES[t.dtype])
      throw new Error(`tensor '${t.name}': ${t.data.length} bytes, shape [${t.shape.join(", ")}] of ${t.dtype} needs ${n * DTYPE_BYTES[t.dtype]}`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.from(json, "utf8");
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const t of tensors) {
    out.set(t.data, at);
    at += t.data.length;
  }
  return out;
}

export async function writeSafetensors(
  path: string, tensors: SafetensorsTensor[], metadata: Record<string, string> = {},
): Promise<number> {
  const bytes = encodeSafetensors(tensors, metadata);
  await writeFile(path, bytes);
  return bytes.length;
}
