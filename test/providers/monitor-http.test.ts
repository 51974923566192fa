import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJsonPath, httpMonitor, parseJsonPath } from '../../src/providers/monitor/http.js';
import type { Monitor } from '../../src/providers/types.js';
import { makeContext, makeEnv, makeHost } from '../helpers/contexts.js';

let server: Server;
let port: number;
let answer: { status: number; body: string } = { status: 200, body: '{}' };
const seen: { url: string; host?: string; method?: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ url: req.url!, host: req.headers['x-host'] as string, method: req.method });
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(answer.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const reply = (obj: unknown, status = 200) => (answer = { status, body: typeof obj === 'string' ? obj : JSON.stringify(obj) });
const monitor = (extra: object = {}) =>
  httpMonitor.create(
    httpMonitor.options.parse({
      url: `http://127.0.0.1:${port}/status/{{host.name}}`,
      headers: { 'x-host': '{{host.address}}' },
      jsonPath: '$.data.inflight',
      ...extra,
    }),
    makeEnv(),
  ) as Monitor;
const ctx = () => makeContext({ host: makeHost('app-07', '10.1.2.3') });

describe('JSON path', () => {
  it('dotted keys and [n] indexes', () => {
    expect(parseJsonPath('$.a.b[2].c')).toEqual(['a', 'b', 2, 'c']);
    expect(getJsonPath({ a: { b: [0, 1, { c: 5 }] } }, '$.a.b[2].c')).toBe(5);
    expect(getJsonPath({ a: [] }, '$.a[0]')).toBeUndefined();
    expect(getJsonPath({ a: 1 }, '$.toString')).toBeUndefined();
    expect(() => parseJsonPath('data.x')).toThrow(/must start with \$/);
    expect(() => parseJsonPath('$.a[x]')).toThrow(/column/);
  });
});

describe('http monitor', () => {
  it('reads the number at jsonPath, with url and headers rendered per host', async () => {
    reply({ data: { inflight: 4, rps: '12.5' } });
    await expect(monitor().value(ctx(), '')).resolves.toBe(4);
    expect(seen.at(-1)).toMatchObject({ url: '/status/app-07', host: '10.1.2.3', method: 'GET' });
    // a non-empty query is a JSON path replacing the provider's
    await expect(monitor().value(ctx(), '$.data.rps')).resolves.toBe(12.5);
  });

  it('absent, null, boolean or non-numeric values are errors, never 0', async () => {
    reply({ data: {} });
    await expect(monitor().value(ctx(), '')).rejects.toThrow(/no data: \$.data.inflight is absent/);
    reply({ data: { inflight: null } });
    await expect(monitor().value(ctx(), '')).rejects.toThrow(/is null/);
    reply({ data: { inflight: false } });
    await expect(monitor().value(ctx(), '')).rejects.toThrow(/not a finite number/);
    reply({ data: { inflight: 'n/a' } });
    await expect(monitor().value(ctx(), '')).rejects.toThrow(/not a finite number/);
  });

  it('HTTP errors and non-JSON answers are errors', async () => {
    reply({ data: { inflight: 0 } }, 500);
    await expect(monitor().value(ctx(), '')).rejects.toThrow(/HTTP 500/);
    reply('<html>', 200);
    await expect(monitor().value(ctx(), '')).rejects.toThrow(/not JSON/);
  });

  it('a bad query path is a non-retryable error; options are strict and check the path', async () => {
    reply({ data: { inflight: 0 } });
    const err = await monitor()
      .value(ctx(), 'data.inflight')
      .catch((e) => e);
    expect(err.message).toMatch(/must start with \$/);
    expect(err.retryable).toBe(false);
    expect(httpMonitor.options.safeParse({ url: 'http://x', jsonPath: 'nope' }).success).toBe(false);
    expect(httpMonitor.options.safeParse({ url: 'http://x', jsonPath: '$.a', body: 'x' }).success).toBe(false);
  });
});
