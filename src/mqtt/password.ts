// Password hashes for the embedded broker: node's scrypt with a random salt.
// Format (one string, `$`-separated, base64 without padding):
//   scrypt$<N>$<r>$<p>$<salt>$<hash>      e.g. scrypt$16384$8$1$3q2+7w...$kP0...
// N, r, p are scrypt's cost parameters; the hash is 32 bytes. Make one with `edgelora hash-password`.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";

const KEY_LEN = 32;
const DEFAULT_COST = { N: 16384, r: 8, p: 1 };

function derive(password: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEY_LEN, { ...opts, maxmem: 256 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

const b64 = (b: Buffer) => b.toString("base64").replace(/=+$/, "");

export async function hashPassword(password: string, cost = DEFAULT_COST): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, cost);
  return ["scrypt", cost.N, cost.r, cost.p, b64(salt), b64(key)].join("$");
}

/** False for a wrong password and for a malformed hash (never throws on user input). */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parts = encoded.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  if (![N, r, p].every((v) => Number.isInteger(v) && v > 0)) return false;
  const expected = Buffer.from(parts[5], "base64");
  if (expected.length !== KEY_LEN) return false;
  try {
    const key = await derive(password, Buffer.from(parts[4], "base64"), { N, r, p });
    return timingSafeEqual(key, expected);
  } catch {
    return false;
  }
}
