// Loopback ports for the servers tests and scripts start (mosquitto, Node-RED, a daemon's broker).
import { createServer, type AddressInfo } from "node:net";

/** A port free on 127.0.0.1 a moment ago (the OS's pick for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}
