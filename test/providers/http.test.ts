import http from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { httpProviderType } from '../../src/providers/generic/http.js';
import { readJsonPath } from '../../src/providers/http-call.js';
import type { Provider } from '../../src/providers/types.js';
import { makeContext, makeEnv, makeHost } from '../helpers/contexts.js';

/** The http-admin provider against a small admin endpoint: suspend/resume plus a JSON status read-back. */
let server: http.Server;
let base: string;
let state: { consumer: string; fail: boolean };
const calls: { method: string; url: string; auth?: string; body: string }[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      calls.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
      if (state.fail) return void res.writeHead(500).end('boom');
      if (req.url!.startsWith('/app-01/suspend') && req.method === 'POST') state.consumer = 'suspended';
      else if (req.url!.startsWith('/app-01/resume') && req.method === 'POST') state.consumer = 'consuming';
      else if (req.url !== '/app-01/status') return void res.writeHead(404).end('no');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ mq: { consumers: [{ state: state.consumer }] } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  state = { consumer: 'consuming', fail: false };
  calls.length = 0;
});

function make(extra: Record<string, unknown> = {}): Provider {
  const opts = httpProviderType.options.parse({
    drain: { http: `${base}/{{host.name}}/suspend`, method: 'POST', body: { host: '{{host.address}}' }, headers: { Authorization: { env: 'ADMIN_TOKEN' } } },
    restore: { http: `${base}/{{host.name}}/resume`, method: 'POST' },
    check: { http: `${base}/{{host.name}}/status`, jsonPath: '$.mq.consumers[0].state', equals: 'suspended' },
    ...extra,
  });
  return httpProviderType.create(opts, makeEnv({ env: { ADMIN_TOKEN: 'Bearer tok-xyz' } })) as Provider;
}

const host = makeHost('app-01', '10.1.2.3');

describe('http-admin provider', () => {
  it('drains with the rendered call and secret header, reads back through the JSON path, restores', async () => {
    const p = make();
    const ctx = makeContext({ host });
    expect(await p.isDrained(ctx)).toMatchObject({ done: false });
    const saved = await p.drain(ctx);
    expect(saved).toEqual({ wasDrained: false });
    const drainCall = calls.find((c) => c.url === '/app-01/suspend')!;
    expect(drainCall).toMatchObject({ method: 'POST', auth: 'Bearer tok-xyz', body: JSON.stringify({ host: '10.1.2.3' }) });
    expect(await p.isDrained(ctx)).toEqual({ done: true, observed: '$.mq.consumers[0].state = "suspended"' });
    expect(await p.isRestored!(ctx, saved)).toEqual({ done: false, observed: '$.mq.consumers[0].state = "suspended", still drained' });
    await p.restore(ctx, saved);
    expect(state.consumer).toBe('consuming');
    expect(await p.isRestored!(ctx, saved)).toEqual({ done: true, observed: '$.mq.consumers[0].state = "consuming"' });
    expect(await p.isRegistered!(ctx)).toMatchObject({ done: true });
  });

  it('leaves a host that was already drained before graywave drained, also across a resumed drain', async () => {
    state.consumer = 'suspended';
    const p = make();
    const saved = await p.drain(makeContext({ host }));
    expect(saved).toEqual({ wasDrained: true });
    expect(await p.drain(makeContext({ host, previous: saved }))).toEqual({ wasDrained: true });
    await p.restore(makeContext({ host }), saved);
    expect(state.consumer).toBe('suspended');
    expect(calls.some((c) => c.url.includes('resume'))).toBe(false);
  });

  it('an error answer is a failed drain and an unknown (not drained) state', async () => {
    const p = make();
    state.fail = true;
    await expect(p.drain(makeContext({ host }))).rejects.toThrow(/check: GET http:\/\/127\.0\.0\.1:\d+\/app-01\/status answered HTTP 500/);
    const check = await p.isDrained(makeContext({ host }));
    expect(check).toMatchObject({ done: false, observed: expect.stringMatching(/^state unknown/) });
  });

  it('requires a check and rejects unknown keys', () => {
    expect(httpProviderType.options.safeParse({ drain: { http: 'x' }, restore: { http: 'y' } }).success).toBe(false);
    expect(
      httpProviderType.options.safeParse({ drain: { http: 'x', verb: 'POST' }, restore: { http: 'y' }, check: { http: 'z', jsonPath: 'a', equals: 1 } })
        .success,
    ).toBe(false);
  });

  it('reads JSON paths with and without $., with array indexes, and misses cleanly', () => {
    const d = { a: { b: [{ c: 1 }, { c: 'two' }] } };
    expect(readJsonPath(d, 'a.b[1].c')).toBe('two');
    expect(readJsonPath(d, '$.a.b[0].c')).toBe(1);
    expect(readJsonPath(d, 'a.x.c')).toBeUndefined();
    expect(readJsonPath(d, '$')).toBe(d);
  });
});
