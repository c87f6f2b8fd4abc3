// The embedded broker's user directory: tenants and admin from the config (scrypt hashes), plus the
// daemon's own client with a random password that lives only in memory.
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Principal } from "./acl.js";
import { verifyPassword } from "./password.js";

export interface UserEntry {
  principal: Principal;
  verify(password: string): Promise<boolean>;
}

export interface UserDirectory {
  lookup(username: string): UserEntry | null;
}

export interface Credentials {
  username: string;
  password: string;
}

export interface UserSource {
  tenants: Record<string, { password_hash: string }>;
  admin: { username: string; password_hash: string | null };
  /** Read-only login; discoveryPrefix: the Home Assistant discovery topics it may also read. */
  observer?: { username: string; password_hash: string | null; discoveryPrefix: string };
}

export const DAEMON_USER = "edgelora-daemon";

export function userDirectory(source: UserSource): { users: UserDirectory; daemon: Credentials } {
  const daemon = { username: DAEMON_USER, password: randomBytes(24).toString("base64url") };
  const daemonSecret = Buffer.from(daemon.password);
  return {
    daemon,
    users: {
      lookup(username) {
        if (username === DAEMON_USER) {
          return {
            principal: { kind: "daemon" },
            verify: async (pw) => {
              const given = Buffer.from(pw);
              return given.length === daemonSecret.length && timingSafeEqual(given, daemonSecret);
            },
          };
        }
        const admin = source.admin;
        if (username === admin.username && admin.password_hash) {
          const hash = admin.password_hash;
          return { principal: { kind: "admin" }, verify: (pw) => verifyPassword(pw, hash) };
        }
        const observer = source.observer;
        if (observer && username === observer.username && observer.password_hash) {
          const hash = observer.password_hash;
          return { principal: { kind: "observer", discoveryPrefix: observer.discoveryPrefix }, verify: (pw) => verifyPassword(pw, hash) };
        }
        const tenant = Object.hasOwn(source.tenants, username) ? source.tenants[username] : undefined;
        if (tenant) return { principal: { kind: "tenant", name: username }, verify: (pw) => verifyPassword(pw, tenant.password_hash) };
        return null;
      },
    },
  };
}
