// Embedded MQTT 3.1.1 broker (aedes) with the edgelora authentication and ACL hooks.
import { createServer, type AddressInfo, type Server } from "node:net";
import aedes from "aedes";
import type { Client, AuthenticateError } from "aedes";

// aedes 0.51 is CommonJS: the default import is the constructor, which also carries createBroker.
type Aedes = ReturnType<typeof aedes.createBroker>;
import type { Logger } from "pino";
import { canPublish, canSubscribe, type Principal } from "./acl.js";
import type { UserDirectory } from "./users.js";

export interface EmbeddedBrokerOptions {
  host: string;
  port: number; // 0 = any free port
  base: string;
  users: UserDirectory;
  logger: Logger;
}

const SERVER_UNAVAILABLE = 3; // CONNACK return codes [MQTT-3.2.2.3]
const BAD_USERNAME_OR_PASSWORD = 4;

export class EmbeddedBroker {
  private readonly aedes: Aedes;
  private readonly server: Server;
  private readonly principals = new WeakMap<Client, Principal>();
  // Until the daemon serves requests only its own client may connect: a tenant's request published
  // before the daemon has subscribed would be dropped without a reply.
  private serving = false;

  constructor(private readonly opts: EmbeddedBrokerOptions) {
    this.aedes = aedes.createBroker({
      authenticate: (client, username, password, done) => {
        const refuse = (returnCode = BAD_USERNAME_OR_PASSWORD) => {
          const err = new Error(returnCode === SERVER_UNAVAILABLE ? "server unavailable: starting" : "bad username or password") as AuthenticateError;
          err.returnCode = returnCode;
          done(err, false);
        };
        const entry = username ? opts.users.lookup(username) : null;
        if (!entry || !password) return refuse();
        if (!this.serving && entry.principal.kind !== "daemon") return refuse(SERVER_UNAVAILABLE);
        entry.verify(password.toString("utf8")).then(
          (ok) => {
            if (!ok) return refuse();
            this.principals.set(client, entry.principal);
            done(null, true);
          },
          () => refuse(),
        );
      },
      authorizePublish: (client, packet, done) => {
        if (!client) return done(null); // the broker's own publishes
        const who = this.principals.get(client);
        if (who && canPublish(who, opts.base, packet.topic)) return done(null);
        opts.logger.warn({ user: who, topic: packet.topic }, "publish refused");
        // MQTT 3.1.1 has no negative PUBACK: aedes disconnects the client.
        done(new Error("not authorized"));
      },
      authorizeSubscribe: (client, sub, done) => {
        const who = this.principals.get(client);
        if (who && canSubscribe(who, opts.base, sub.topic)) return done(null, sub);
        opts.logger.warn({ user: who, topic: sub.topic }, "subscribe refused");
        done(null, null); // SUBACK 0x80 for this filter [MQTT-3.9.3]
      },
    });
    // No Nagle delay: a PUBACK or a reply otherwise waits for the client's delayed ACK (~40 ms).
    this.server = createServer({ noDelay: true }, this.aedes.handle);
  }

  /** Resolves the port it listens on. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off("error", reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** From now on tenants, admin and observers may connect (CONNACK 3 "server unavailable" before). */
  openToClients(): void {
    this.serving = true;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.aedes.close(() => undefined);
    });
  }
}
