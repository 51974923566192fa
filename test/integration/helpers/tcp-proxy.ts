import net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a server, to cut one client off without touching the server (or the
 * other clients, which connect directly):
 * - `cut()`: every connection through the proxy is destroyed, new ones are reset at once (connection refused) and
 *   counted in `refused` (a client that has seen the cut and tries to reconnect);
 * - `stall()`: connections stay open but nothing is forwarded (a black hole); bytes sent meanwhile are held and
 *   forwarded on `restore()`, unless their connection was closed in between (then they are dropped, never sent);
 * - `muteReplies()`: requests still reach the server, its answers are dropped (an answer lost on the way back);
 * - `restore()`: back to forwarding.
 */
export class TcpProxy {
  private mode: Mode = 'open';
  private readonly pairs = new Set<Pair>();
  /** Connections reset because the proxy was cut: each is a client that noticed and tried to reconnect. */
  refused = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = net.createServer((client) => proxy?.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy = new TcpProxy(server, (server.address() as net.AddressInfo).port, { host: targetHost, port: targetPort });
    return proxy;
  }

  /** `host:port` of the proxy, for a ZooKeeper connect string. */
  get connect(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Connections currently open through the proxy. */
  get connections(): number {
    return this.pairs.size;
  }

  cut(): void {
    this.mode = 'cut';
    for (const p of [...this.pairs]) p.close();
  }

  stall(): void {
    this.mode = 'stall';
  }

  muteReplies(): void {
    this.mode = 'mute';
  }

  restore(): void {
    this.mode = 'open';
    for (const p of this.pairs) p.flush();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.mode === 'cut') {
      this.refused++;
      client.on('error', () => undefined);
      client.resetAndDestroy();
      return;
    }
    const pair = new Pair(
      client,
      net.connect(this.target),
      () => this.mode,
      () => this.pairs.delete(pair),
    );
    this.pairs.add(pair);
  }
}

type Mode = 'open' | 'cut' | 'stall' | 'mute';

/** One proxied connection (a: the client, b: the server): forwards both ways, holding bytes back while stalled. */
class Pair {
  private held: { to: net.Socket; data: Buffer }[] = [];
  private closed = false;

  constructor(
    private readonly a: net.Socket,
    private readonly b: net.Socket,
    private readonly mode: () => Mode,
    private readonly onClose: () => void,
  ) {
    const forward = (to: net.Socket) => (data: Buffer) => {
      const mode = this.mode();
      if (mode === 'stall') this.held.push({ to, data });
      else if (!(mode === 'mute' && to === a)) to.write(data);
    };
    a.on('data', forward(b));
    b.on('data', forward(a));
    for (const s of [a, b]) {
      s.on('error', () => this.close());
      s.on('close', () => this.close());
    }
  }

  flush(): void {
    for (const { to, data } of this.held.splice(0)) to.write(data);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.held = [];
    this.a.destroy();
    this.b.destroy();
    this.onClose();
  }
}
