/**
 * A TCP proxy on loopback that a test can cut and mend: a partition between one
 * client (a sidecar) and one server (a database) while everyone else still
 * reaches that server directly or through proxies of their own.
 *
 * Cut: every open connection is reset and new ones are reset on accept, so the
 * client sees its probe fail at once (as with a firewall's REJECT), not hang.
 */
import net from 'node:net';

export interface TcpProxy {
  /** The port clients connect to (127.0.0.1). */
  readonly port: number;
  readonly isCut: boolean;
  /** Connections accepted and forwarded so far. */
  readonly forwarded: number;
  cut(): void;
  mend(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(upstreamPort: number, upstreamHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let cut = false;
  let forwarded = 0;
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    // A reset from either side is the expected end of a cut connection, not an error of the test.
    s.on('error', () => s.destroy());
  };
  const server = net.createServer((client) => {
    track(client);
    if (cut) {
      client.resetAndDestroy();
      return;
    }
    forwarded++;
    const upstream = net.connect({ host: upstreamHost, port: upstreamPort });
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get isCut() {
      return cut;
    },
    get forwarded() {
      return forwarded;
    },
    cut() {
      cut = true;
      for (const s of sockets) s.resetAndDestroy();
    },
    mend() {
      cut = false;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
