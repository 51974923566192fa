import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nginxSplitOptions } from '../../src/routing/nginx-split.js';
import { changesInEffect, RoutingRunner } from '../../src/routing/run.js';
import { hasNginx, startBackend, startNginx, type Backend, type NginxServer } from './helpers/nginx.js';
import { freePort, tempDir, removeDir } from './helpers/process.js';
import { hasOpenssl, makeTestPki, type TestPki } from '../helpers/tls.js';
import { routingDeps } from '../routing/deps.js';

/**
 * nginx-split against a real nginx: the site proxies to $graywave_upstream, graywave owns the file defining it.
 * Requests with the cookie (or header) reach GREEN, others are split by the weight (±5% over 2,000 requests);
 * rollback puts the site's own file back byte for byte.
 */

const run = hasNginx();
let nginx: NginxServer;
let blue: Backend;
let green: Backend;
let dir: string;
let owned: string;
// The same site over TLS (a self-signed certificate), for the probe's tls: option.
const tlsRun = run && hasOpenssl();
let pki: TestPki | undefined;
let tlsPort = 0;
const ORIGINAL = '# the site team\'s own entry: everything to BLUE\nmap "" $graywave_upstream { default order_blue; }\n';

function get(port: number, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body.trim()));
    });
    req.on('error', reject);
  });
}

async function greenShare(n: number, headers: Record<string, string> = {}): Promise<number> {
  let g = 0;
  for (let i = 0; i < n; i += 50) {
    const answers = await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => get(nginx.port, headers)));
    g += answers.filter((a) => a === 'GREEN').length;
  }
  return g / n;
}

beforeAll(async () => {
  if (!run) return;
  dir = tempDir('routing-nginx');
  blue = await startBackend('BLUE');
  green = await startBackend('GREEN');
  // The owned file exists before graywave (the site config needs the variable): graywave must put it back exactly.
  owned = join(dir, 'graywave-order.conf');
  writeFileSync(owned, ORIGINAL);
  let tlsServer = '';
  if (tlsRun) {
    pki = makeTestPki();
    tlsPort = await freePort();
    tlsServer = `    server { listen 127.0.0.1:${tlsPort} ssl; ssl_certificate ${pki.dir}/server.pem; ssl_certificate_key ${pki.dir}/server.key; location / { proxy_pass http://$graywave_upstream; } }\n`;
  }
  nginx = await startNginx(
    `    upstream order_blue { server ${blue.address}; }\n    upstream order_green { server ${green.address}; }\n    include ${owned};\n` +
      `    server { listen 127.0.0.1:{{PORT}}; location / { proxy_pass http://$graywave_upstream; } }\n` +
      tlsServer,
  );
}, 30_000);

afterAll(async () => {
  if (!run) return;
  await nginx?.stop();
  await blue?.close();
  await green?.close();
  pki?.cleanup();
  removeDir(dir);
});

describe.skipIf(!run)('routing nginx-split on a real nginx', () => {
  it('publishes, widens per wave (cookie → GREEN, weights within ±5%), survives a failing test, and rolls back byte for byte', async () => {
    const params = nginxSplitOptions.parse({
      file: owned,
      blue: 'order_blue',
      green: 'order_green',
      cookie: 'gray=GREEN',
      weights: [5, 25, 50, 100],
      test: nginx.test,
      reload: nginx.reload,
      probe: { url: `http://127.0.0.1:${nginx.port}/`, green: 'GREEN' },
      timeout: '10s',
    });
    const deps = routingDeps(dir, {
      routing: [{ name: 'gray-entry', type: 'nginx-split', params, end: 'final' }],
      waves: [['h1'], ['h2', 'h3'], ['h4', 'h5']],
    });
    const runner = new RoutingRunner(deps);

    expect(await greenShare(50)).toBe(0);
    await runner.at('publish', 0);
    expect(readFileSync(owned, 'utf8')).toContain('$graywave_upstream');
    expect(await greenShare(100, { cookie: 'gray=GREEN' })).toBe(1);
    expect(await greenShare(100, { 'x-gray-group': 'GREEN' })).toBe(1);
    expect(await greenShare(200)).toBe(0);

    await runner.at('widen', 1);
    const w1 = await greenShare(2000);
    expect(w1).toBeGreaterThanOrEqual(0.0);
    expect(w1).toBeLessThanOrEqual(0.1);
    await runner.at('widen', 2);
    const w2 = await greenShare(2000);
    expect(Math.abs(w2 - 0.25)).toBeLessThanOrEqual(0.05);
    expect(await greenShare(100, { cookie: 'other=1; gray=GREEN' })).toBe(1);

    // Resume does not re-publish what is recorded: the same point again changes nothing and writes no record.
    const before = deps.journal.records.length;
    await runner.at('widen', 2);
    expect(deps.journal.records.length).toBe(before);
    const routing = deps.journal.records.filter((r) => r.type === 'routing');
    expect(routing.map((r) => `${(r as { phase: string }).phase}:${(r as { wave: number }).wave}`)).toEqual([
      'publish:0',
      'verified:0',
      'widen:1',
      'verified:1',
      'widen:2',
      'verified:2',
    ]);

    // A config that fails `test` is put back and the point fails (recorded), traffic unchanged.
    const other = tempDir('routing-nginx-journal');
    const spoiled = new RoutingRunner(
      routingDeps(other, {
        routing: [{ name: 'gray-entry', type: 'nginx-split', params: { ...params, splitOn: '$no_such_variable' }, end: 'final' }],
        waves: [['h1'], ['h2']],
      }),
    );
    const good = readFileSync(owned, 'utf8');
    await expect(spoiled.at('widen', 1)).rejects.toThrow(/failed after .*previous file was put back/);
    expect(readFileSync(owned, 'utf8')).toBe(good);
    await spoiled.close();
    removeDir(other);

    // Rollback: newest change first, back to the site's own file, byte for byte; BLUE gets everything again.
    expect(changesInEffect(deps.journal.records)).toHaveLength(3);
    expect(await runner.undo()).toBe(true);
    expect(readFileSync(owned, 'utf8')).toBe(ORIGINAL);
    expect(changesInEffect(deps.journal.records)).toHaveLength(0);
    let share = 1;
    for (let i = 0; i < 50 && share > 0; i++) share = await greenShare(40, { cookie: 'gray=GREEN' });
    expect(share).toBe(0);
    await runner.close();
  }, 60_000);

  it.skipIf(!tlsRun)(
    'the probe reaches an https:// entry behind a private CA with tls: { ca }; without it the point fails naming the certificate',
    async () => {
      writeFileSync(join(dir, 'entry-ca.pem'), pki!.serverCert);
      const params = (tls?: object) =>
        nginxSplitOptions.parse({
          file: owned,
          blue: 'order_blue',
          green: 'order_green',
          cookie: 'gray=GREEN',
          weights: [0, 100],
          test: nginx.test,
          reload: nginx.reload,
          probe: { url: `https://127.0.0.1:${tlsPort}/`, green: 'GREEN', requests: 5, ...(tls ? { tls } : {}) },
          timeout: '30s',
        });
      const untrusted = new RoutingRunner(
        routingDeps(tempDir('routing-nginx-tls'), { routing: [{ name: 'gray-entry', type: 'nginx-split', params: params(), end: 'final' }], waves: [['h1']] }),
      );
      const t0 = Date.now();
      await expect(untrusted.at('publish', 0)).rejects.toThrow(/self-signed certificate.*tls: \{ ca:/);
      expect(Date.now() - t0).toBeLessThan(15_000); // at once, not after its 30 s timeout: waiting cannot make a certificate trusted
      expect(await untrusted.undo()).toBe(true);
      await untrusted.close();
      expect(readFileSync(owned, 'utf8')).toBe(ORIGINAL);

      const d = tempDir('routing-nginx-tls');
      const trusted = new RoutingRunner(
        routingDeps(d, {
          routing: [{ name: 'gray-entry', type: 'nginx-split', params: params({ ca: join(dir, 'entry-ca.pem') }), end: 'final' }],
          waves: [['h1']],
        }),
      );
      await trusted.at('publish', 0);
      const verified = readFileSync(join(d, 'journal.jsonl'), 'utf8');
      expect(verified).toMatch(/"phase":"verified"[^\n]*with the cookie 5\/5 answered GREEN/);
      expect(await trusted.undo()).toBe(true);
      await trusted.close();
      expect(readFileSync(owned, 'utf8')).toBe(ORIGINAL);
    },
    60_000,
  );
});
