/**
 * A TCP port in front of a real one that can play an unreachable host the hard way: while
 * closed it accepts connections and never answers (as a firewall that drops packets would look
 * to a client already past the handshake), so an SSH client waits out its ready timeout. Opening
 * it forwards every connection, the held ones included (what they sent meanwhile is delivered).
 */
import net from 'node:net';

export interface BlackholeProxy {
  port: number;
  /** Connections accepted so far. */
  accepted(): number;
  /** Forward from now on, held connections too. */
  open(): void;
  close(): Promise<void>;
}

export async function startBlackholeProxy(target: { host: string; port: number }): Promise<BlackholeProxy> {
  let forwarding = false;
  let accepted = 0;
  const held = new Set<net.Socket>();
  const sockets = new Set<net.Socket>();
  const forward = (client: net.Socket) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
    client.resume();
  };
  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    accepted++;
    sockets.add(client);
    client.on('close', () => {
      sockets.delete(client);
      held.delete(client);
    });
    client.on('error', () => {});
    if (forwarding) forward(client);
    else held.add(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    open() {
      forwarding = true;
      for (const client of held) forward(client);
      held.clear();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
