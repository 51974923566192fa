import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGate } from '../../src/gates/http.js';
import { findGate } from '../../src/gates/index.js';
import { makeGateContext, makeHost } from '../helpers/contexts.js';

// A gray router stand-in: GREEN traffic answers "pong", except every `failEvery`-th request answers 500.
let server: Server;
let base: string;
let n = 0;
let failEvery = 0;
const groups: string[] = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    n++;
    groups.push(String(req.headers['x-gray-group']));
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ status: 'UP', checks: [{ name: 'db', ok: true }], host: req.headers['x-host'] }));
    }
    if (failEvery && n % failEvery === 0) {
      res.writeHead(500);
      return res.end('upstream exploded');
    }
    res.writeHead(200);
    res.end('{"reply":"pong"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const params = (extra: object) =>
  httpGate.params.parse({ url: `${base}/api/ping`, headers: { 'x-gray-group': '{{group}}' }, expect: { status: 200, body: 'pong' }, ...extra });

describe('http gate', () => {
  it('passes when every repeat answers as expected, sending rendered headers', async () => {
    failEvery = 0;
    groups.length = 0;
    const r = await httpGate.run(makeGateContext(), params({ repeat: 20 }));
    expect(r).toMatchObject({ ok: true, observed: '20/20 answered as expected', values: { requests: 20, failed: 0, status_200: 20 } });
    expect(groups).toEqual(Array(20).fill('GREEN'));
    expect(findGate('http')).toBe(httpGate);
  });

  it('fails on any bad answer, reporting how many failed and the first failure', async () => {
    n = 0;
    failEvery = 5;
    const ctx = makeGateContext();
    const r = await httpGate.run(ctx, params({ repeat: 20 }));
    expect(r.ok).toBe(false);
    expect(r.observed).toBe('4/20 requests failed; first (request 5): status 500 (expected 200): upstream exploded');
    expect(r.values).toMatchObject({ requests: 20, failed: 4, status_200: 16, status_500: 4 });
    expect(ctx.progressLines.at(-1)).toBe('20/20 requests, 4 failed');
    failEvery = 0;
  });

  it('checks a body substring', async () => {
    const r = await httpGate.run(makeGateContext(), params({ expect: { body: 'PONG' } }));
    expect(r).toMatchObject({ ok: false, observed: expect.stringContaining('body does not contain "PONG"') });
  });

  it('checks JSON paths, with templates rendered for a per-host gate', async () => {
    const host = makeHost('app-3', '10.9.9.9');
    const ok = await httpGate.run(
      makeGateContext({ host }),
      httpGate.params.parse({
        url: `${base}/health`,
        headers: { 'x-host': '{{host.name}}' },
        expect: { json: { '$.status': 'UP', '$.checks[0].ok': true, '$.host': 'app-3' } },
      }),
    );
    expect(ok.ok).toBe(true);
    const bad = await httpGate.run(makeGateContext({ host }), httpGate.params.parse({ url: `${base}/health`, expect: { json: { '$.status': 'DOWN' } } }));
    expect(bad.observed).toContain('$.status is "UP" (expected "DOWN")');
  });

  it('a connection error is a failed request, not a crash', async () => {
    const r = await httpGate.run(makeGateContext(), httpGate.params.parse({ url: 'http://127.0.0.1:9/x', timeout: '1s', repeat: 2 }));
    expect(r.ok).toBe(false);
    expect(r.observed).toMatch(/^2\/2 requests failed; first \(request 1\): GET http:\/\/127.0.0.1:9\/x: /);
  });

  it('params are strict with defaults', () => {
    expect(httpGate.params.parse({ url: 'http://x' })).toMatchObject({ expect: { status: 200 }, repeat: 1 });
    expect(httpGate.params.safeParse({ url: 'http://x', expect: { code: 200 } }).success).toBe(false);
    expect(httpGate.params.safeParse({ url: 'http://x', expect: { json: { status: 'UP' } } }).success).toBe(false);
  });
});
