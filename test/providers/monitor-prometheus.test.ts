import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../integration/helpers/process.js';
import { prometheusMonitor, readInstantResult } from '../../src/providers/monitor/prometheus.js';
import type { Monitor } from '../../src/providers/types.js';
import { makeContext, makeEnv } from '../helpers/contexts.js';

// Answer shapes as documented for /api/v1/query (protocols.md §6.1): values are strings, time is unix seconds.
const now = () => Date.now() / 1000;
const vector = (...values: string[]) => ({
  status: 'success',
  data: { resultType: 'vector', result: values.map((v, i) => ({ metric: { instance: `10.0.0.${i}:8080` }, value: [now(), v] })) },
});

let server: Server;
let base: string;
let reply: (req: IncomingMessage, body: string, res: ServerResponse) => void;
const seen: { method?: string; auth?: string; body: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method, auth: req.headers.authorization, body });
      reply(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  seen.length = 0;
});

function json(obj: unknown, status = 200) {
  reply = (_req, _body, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(obj));
  };
}

function monitor(extra: Record<string, unknown> = {}, env = makeEnv()): Monitor {
  const o = prometheusMonitor.options.parse({ url: base, ...extra });
  return prometheusMonitor.create(o, env) as Monitor;
}

describe('prometheus monitor', () => {
  it('reads a one-sample vector, sending the query as a POST form', async () => {
    json(vector('12.5'));
    await expect(monitor().value(makeContext(), 'sum(rate(x[1m]))')).resolves.toBe(12.5);
    expect(seen[0]!.method).toBe('POST');
    expect(new URLSearchParams(seen[0]!.body).get('query')).toBe('sum(rate(x[1m]))');
  });

  it('reads a scalar result, and a real zero', async () => {
    json({ status: 'success', data: { resultType: 'scalar', result: [now(), '0'] } });
    await expect(monitor().value(makeContext(), 'scalar(x)')).resolves.toBe(0);
  });

  it('an empty vector is no data, never 0', async () => {
    json(vector());
    await expect(monitor().value(makeContext(), 'x')).rejects.toThrow('no data (empty result)');
  });

  it('several series are an error naming them', async () => {
    json(vector('1', '2'));
    await expect(monitor().value(makeContext(), 'x')).rejects.toThrow(/2 series .*instance="10.0.0.0:8080".*sum\(/);
  });

  it('NaN and +Inf are errors', async () => {
    json(vector('NaN'));
    await expect(monitor().value(makeContext(), 'x')).rejects.toThrow(/NaN/);
    json(vector('+Inf'));
    await expect(monitor().value(makeContext(), 'x')).rejects.toThrow(/\+Inf/);
  });

  it('status error reports errorType and error (HTTP 400/422)', async () => {
    json({ status: 'error', errorType: 'bad_data', error: 'invalid parameter "query": 1:5: parse error' }, 400);
    await expect(monitor().value(makeContext(), 'sum(')).rejects.toThrow(/HTTP 400, bad_data\): invalid parameter "query"/);
  });

  it('a proxy error page (HTTP 502, not JSON) is an error', async () => {
    reply = (_q, _b, res) => {
      res.writeHead(502);
      res.end('<html>Bad Gateway</html>');
    };
    await expect(monitor().value(makeContext(), 'x')).rejects.toThrow(/HTTP 502.*Bad Gateway/);
  });

  it('a matrix result is refused', async () => {
    json({ status: 'success', data: { resultType: 'matrix', result: [] } });
    await expect(monitor().value(makeContext(), 'x[1m]')).rejects.toThrow(/matrix/);
  });

  it('a sample older than maxAge is stale', async () => {
    json({ status: 'success', data: { resultType: 'vector', result: [{ metric: {}, value: [now() - 600, '0'] }] } });
    await expect(monitor({ maxAge: '1m' }).value(makeContext(), 'x')).rejects.toThrow(/stale sample: 10m0s old/);
    expect(() => readInstantResult({ status: 'success', data: { resultType: 'scalar', result: [now() - 30, '1'] } }, 60_000)).not.toThrow();
  });

  it('sends a bearer token from an env var, and never puts it in errors', async () => {
    reply = (req, _b, res) => {
      res.writeHead(req.headers.authorization === 'Bearer s3cr3t-token' ? 200 : 401);
      res.end(req.headers.authorization === 'Bearer s3cr3t-token' ? JSON.stringify(vector('1')) : 'Unauthorized');
    };
    const good = monitor({ token: { env: 'PROM_T' } }, makeEnv({ env: { PROM_T: 's3cr3t-token' } }));
    await expect(good.value(makeContext(), 'x')).resolves.toBe(1);
    const bad = monitor({ token: { env: 'PROM_T' } }, makeEnv({ env: { PROM_T: 'wrong-token' } }));
    const err = await bad.value(makeContext(), 'x').catch((e: Error) => e);
    expect(String(err)).toMatch(/HTTP 401 \(check token/);
    expect(String(err)).not.toContain('wrong-token');
  });

  it('sends basic auth, and a missing secret is a clear, non-retryable error', async () => {
    json(vector('3'));
    const env = makeEnv({ env: { U: 'alice', P: 'pw' } });
    await monitor({ username: { env: 'U' }, password: { env: 'P' } }, env).value(makeContext(), 'x');
    expect(seen[0]!.auth).toBe(`Basic ${Buffer.from('alice:pw').toString('base64')}`);
    expect(env.secrets.mask(seen[0]!.auth!)).toBe('Basic ***');
    const err = await monitor({ token: { env: 'NOPE_UNSET' } }, makeEnv({ env: {} }))
      .value(makeContext(), 'x')
      .catch((e) => e);
    expect(err.message).toMatch(/token: secret env var NOPE_UNSET is not set/);
    expect(err.retryable).toBe(false);
  });

  it('an unreachable server is an error', async () => {
    const o = prometheusMonitor.options.parse({ url: `http://127.0.0.1:${await freePort()}`, timeout: '2s' });
    await expect((prometheusMonitor.create(o, makeEnv()) as Monitor).value(makeContext(), 'x')).rejects.toThrow(/ECONNREFUSED/);
  });

  it('options are strict and auth modes exclusive', () => {
    expect(prometheusMonitor.options.safeParse({ url: base, tokn: 'x' }).success).toBe(false);
    expect(prometheusMonitor.options.safeParse({ url: base, token: { env: 'A' }, username: { env: 'B' }, password: { env: 'C' } }).success).toBe(false);
    expect(prometheusMonitor.options.safeParse({ url: base, username: { env: 'B' } }).success).toBe(false);
    expect(prometheusMonitor.options.safeParse({ url: base, token: 'literal-secret' }).success).toBe(false);
    expect(prometheusMonitor.role).toBe('monitor');
  });
});
