import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { freePort, portOpen, removeDir, requireBinary, startProcess, tempDir, waitFor, type Server } from './process.js';

export const HAPROXY_BIN = '/usr/sbin/haproxy';
export const SOCAT_BIN = '/usr/bin/socat';

/** True when haproxy and socat are installed; throws under CI=true when they are not. */
export function hasHaproxy(): boolean {
  return (
    requireBinary(HAPROXY_BIN, 'apt-get install -y --no-install-recommends haproxy') &&
    requireBinary(SOCAT_BIN, 'apt-get install -y --no-install-recommends socat')
  );
}

export interface HaproxyServer {
  dir: string;
  /** Unix admin socket path. */
  socket: string;
  /** `tcp:127.0.0.1:PORT` admin socket. */
  tcpSocket: string;
  /** Frontend port. */
  port: number;
  server: Server;
  stop(): Promise<void>;
}

/**
 * A foreground HAProxy (no master) in a temp dir: frontend on a free port, `backend be` with the given
 * `name → 127.0.0.1:port` servers (no health checks, so they are UP at once), admin sockets on a unix path and a TCP port.
 */
export async function startHaproxy(servers: Record<string, string>): Promise<HaproxyServer> {
  const dir = tempDir('hap');
  const [port, admin] = [await freePort(), await freePort()];
  const socket = join(dir, 'admin.sock');
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      `    stats socket ${socket} mode 600 level admin`,
      `    stats socket ipv4@127.0.0.1:${admin} level admin`,
      '    maxconn 256',
      'defaults',
      '    mode http',
      '    timeout connect 2s',
      '    timeout client 20s',
      '    timeout server 20s',
      'frontend fe',
      `    bind 127.0.0.1:${port}`,
      '    default_backend be',
      'backend be',
      '    balance roundrobin',
      ...Object.entries(servers).map(([n, a]) => `    server ${n} ${a}`),
      '',
    ].join('\n'),
  );
  const server = startProcess(HAPROXY_BIN, ['-db', '-f', cfg], { dir, name: 'haproxy' });
  await waitFor(async () => (await portOpen('127.0.0.1', port)) && (await portOpen('127.0.0.1', admin)), 'haproxy', { server, timeoutMs: 10_000 });
  return {
    dir,
    socket,
    tcpSocket: `tcp:127.0.0.1:${admin}`,
    port,
    server,
    async stop() {
      await server.stop('SIGTERM', 3_000);
      removeDir(dir);
    },
  };
}

export interface HoldingBackend {
  address: string;
  count: number;
  /** Requests received and not answered yet. */
  held: number;
  /** Answer every held request (and answer new ones at once from now on when `open`). */
  release(open?: boolean): void;
  /** Hold new requests until release(). */
  hold(): void;
  close(): Promise<void>;
}

/** An HTTP backend that can hold requests open: sessions that stay current in HAProxy until released. */
export async function startHoldingBackend(name: string): Promise<HoldingBackend> {
  const port = await freePort();
  let holding = false;
  const waiting: http.ServerResponse[] = [];
  const b: HoldingBackend = {
    address: `127.0.0.1:${port}`,
    count: 0,
    get held() {
      return waiting.length;
    },
    release(open = true) {
      holding = !open;
      for (const res of waiting.splice(0)) res.end(`${name}\n`);
    },
    hold() {
      holding = true;
    },
    close: () => new Promise<void>((r) => (srv.closeAllConnections(), srv.close(() => r()))),
  };
  const srv = http.createServer((_req, res) => {
    b.count++;
    if (holding) waiting.push(res);
    else res.end(`${name}\n`);
  });
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  return b;
}

/** One GET without keep-alive; resolves with the status (or rejects on a network error). */
export function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}
