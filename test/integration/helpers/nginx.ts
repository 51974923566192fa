import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { freePort, portOpen, removeDir, requireBinary, startProcess, tempDir, waitFor, type Server } from './process.js';

export const NGINX_BIN = '/usr/sbin/nginx';

/** True when nginx is installed; throws under CI=true when it is not (a missing server fails the file). */
export function hasNginx(): boolean {
  return requireBinary(NGINX_BIN, 'apt-get install -y --no-install-recommends nginx');
}

export interface NginxServer {
  dir: string;
  /** Absolute path of nginx.conf. */
  conf: string;
  /** Where nginx listens (127.0.0.1:port). */
  port: number;
  /** `nginx -t` and `nginx -s reload` for this prefix (what the provider's `test` and `reload` options take). */
  test: string;
  reload: string;
  server: Server;
  stop(): Promise<void>;
}

/**
 * A foreground nginx (master + 1 worker) in a temp dir on a free loopback port. `http` is the body of the
 * `http { }` block after the temp-path lines; `{{PORT}}` in it is replaced with the listen port.
 * Start it once per test file.
 */
export async function startNginx(httpBlock: string): Promise<NginxServer> {
  const dir = tempDir('nginx');
  mkdirSync(join(dir, 'logs'));
  mkdirSync(join(dir, 'tmp'));
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  const root = process.getuid?.() === 0 ? 'user root;\n' : ''; // workers must enter the 0700 temp dir
  writeFileSync(
    conf,
    `daemon off;\nmaster_process on;\nworker_processes 1;\n${root}pid logs/nginx.pid;\nerror_log logs/error.log info;\n` +
      `events { worker_connections 512; }\nhttp {\n    access_log off;\n` +
      ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `    ${t}_temp_path tmp/${t};\n`).join('') +
      httpBlock.replaceAll('{{PORT}}', String(port)) +
      '}\n',
  );
  const flags = `-p ${dir} -c nginx.conf -e logs/error.log`;
  const server = startProcess(NGINX_BIN, ['-p', dir, '-c', 'nginx.conf', '-e', 'logs/error.log'], { dir, name: 'nginx-stdout' });
  await waitFor(() => portOpen('127.0.0.1', port), 'nginx', { server, timeoutMs: 10_000 });
  return {
    dir,
    conf,
    port,
    test: `${NGINX_BIN} -t -q ${flags}`,
    reload: `${NGINX_BIN} -s reload ${flags}`,
    server,
    async stop() {
      await server.stop('SIGQUIT', 3_000);
      removeDir(dir);
    },
  };
}

export interface Backend {
  port: number;
  address: string;
  /** Requests this backend has received. */
  count: number;
  close(): Promise<void>;
}

/** A tiny HTTP backend in this process that counts requests and answers after `delayMs` (so requests are in flight during a reload). */
export async function startBackend(name: string, delayMs = 0): Promise<Backend> {
  const port = await freePort();
  const b: Backend = {
    port,
    address: `127.0.0.1:${port}`,
    count: 0,
    close: () => new Promise<void>((r) => (srv.closeAllConnections(), srv.close(() => r()))),
  };
  const srv = http.createServer((_req, res) => {
    b.count++;
    setTimeout(() => res.end(`${name}\n`), delayMs);
  });
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  return b;
}

/** Workers sending requests back to back (no keep-alive, like a fresh client each time) until stopped. */
export function loadLoop(url: string, workers: number): { stop(): Promise<{ ok: number; failed: string[] }> } {
  let running = true;
  let ok = 0;
  const failed: string[] = [];
  const one = () =>
    new Promise<void>((resolve) => {
      const req = http.get(url, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) ok++;
          else failed.push(`HTTP ${res.statusCode}`);
          resolve();
        });
      });
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.on('error', (e) => (failed.push(e.message), resolve()));
    });
  const loops = Array.from({ length: workers }, async () => {
    while (running) await one();
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { ok, failed };
    },
  };
}

export { removeDir };
