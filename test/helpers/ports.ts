// Loopback ports for the servers tests and scripts start (mosquitto, Node-RED, a daemon's broker).
import { connect, createServer, type AddressInfo } from "node:net";

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

/** Whether something accepts connections on 127.0.0.1:port. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, "127.0.0.1", () => (sock.destroy(), resolve(true)));
    sock.once("error", () => resolve(false));
  });
}
