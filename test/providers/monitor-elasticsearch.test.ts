import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countBody, elasticsearchMonitor } from '../../src/providers/monitor/elasticsearch.js';
import type { Monitor } from '../../src/providers/types.js';
import { makeContext, makeEnv, makeHost } from '../helpers/contexts.js';

/**
 * A small stand-in for Elasticsearch's `_count`: it evaluates the bool/filter request graywave sends (range with
 * `now-Ns` date math, term, simple `field:value` query_string) over in-memory documents, and answers with the
 * documented shapes (protocols.md §6.2): `{count, _shards}`, 404 index_not_found_exception, partial shard failures.
 */
interface Doc {
  '@timestamp': number;
  host: { name: string };
  status: number;
}
let docs: Doc[] = [];
let mode: 'ok' | 'shards' | 'auth' = 'ok';
const requests: { path: string; auth?: string; body: any }[] = [];

function resolveDate(expr: string): number {
  const m = /^now(?:-(\d+)s)?$/.exec(expr);
  if (!m) throw new Error(`date math the stub does not know: ${expr}`);
  return Date.now() - Number(m[1] ?? 0) * 1000;
}
function get(doc: any, field: string): unknown {
  return field.split('.').reduce((o, k) => (o == null ? undefined : o[k]), doc);
}
function matches(doc: Doc, f: any): boolean {
  if (f.range) {
    const [field, r] = Object.entries(f.range)[0] as [string, { gte: string; lt: string }];
    const t = get(doc, field) as number;
    return t >= resolveDate(r.gte) && t < resolveDate(r.lt);
  }
  if (f.term) {
    const [field, v] = Object.entries(f.term)[0]!;
    return get(doc, field) === v;
  }
  if (f.query_string) {
    const [field, v] = (f.query_string.query as string).split(':');
    return String(get(doc, field!)) === v;
  }
  throw new Error('unknown filter');
}

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const body = raw ? JSON.parse(raw) : {};
      requests.push({ path: req.url!, auth: req.headers.authorization, body });
      const send = (status: number, obj: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      const index = decodeURI(req.url!.split('/')[1]!);
      if (mode === 'auth')
        return send(401, {
          error: { type: 'security_exception', reason: 'missing authentication credentials for REST request [/access-*/_count]' },
          status: 401,
        });
      if (!index.startsWith('access')) {
        return send(404, {
          error: {
            root_cause: [{ type: 'index_not_found_exception', reason: `no such index [${index}]`, index }],
            type: 'index_not_found_exception',
            reason: `no such index [${index}]`,
            index,
          },
          status: 404,
        });
      }
      const count = docs.filter((d) => body.query.bool.filter.every((f: unknown) => matches(d, f))).length;
      if (mode === 'shards') {
        return send(200, {
          count,
          _shards: {
            total: 5,
            successful: 3,
            skipped: 0,
            failed: 2,
            failures: [{ shard: 1, index: 'access-1', reason: { type: 'query_shard_exception', reason: 'No mapping found for [@timestamp]' } }],
          },
        });
      }
      send(200, { count, _shards: { total: 5, successful: 5, skipped: 0, failed: 0 } });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  mode = 'ok';
  requests.length = 0;
  const now = Date.now();
  docs = [
    { '@timestamp': now - 5_000, host: { name: 'app-01' }, status: 200 },
    { '@timestamp': now - 20_000, host: { name: 'app-01' }, status: 500 },
    { '@timestamp': now - 90_000, host: { name: 'app-01' }, status: 200 },
    { '@timestamp': now - 5_000, host: { name: 'app-02' }, status: 200 },
  ];
});

function monitor(extra: Record<string, unknown> = {}, env = makeEnv()): Monitor {
  return elasticsearchMonitor.create(elasticsearchMonitor.options.parse({ url: base, index: 'access-*', ...extra }), env) as Monitor;
}
const ctx = (name = 'app-01') => makeContext({ host: makeHost(name, '10.0.0.1') });

describe('elasticsearch monitor', () => {
  it("counts the host's documents in the last window (default 60s, host.name, @timestamp)", async () => {
    await expect(monitor().value(ctx(), '')).resolves.toBe(2);
    expect(requests[0]!.path).toBe('/access-*/_count');
    expect(requests[0]!.body.query.bool.filter).toEqual([{ range: { '@timestamp': { gte: 'now-60s', lt: 'now' } } }, { term: { 'host.name': 'app-01' } }]);
  });

  it('lag moves the window into the past; a query is an extra query_string filter', async () => {
    await expect(monitor({ window: '30s', lag: '10s' }).value(ctx(), '')).resolves.toBe(1);
    expect(requests[0]!.body.query.bool.filter[0]).toEqual({ range: { '@timestamp': { gte: 'now-40s', lt: 'now-10s' } } });
    await expect(monitor().value(ctx(), 'status:500')).resolves.toBe(1);
    expect(requests[1]!.body.query.bool.filter[2]).toEqual({ query_string: { query: 'status:500' } });
  });

  it('a drained host reads a real 0', async () => {
    await expect(monitor({ window: '3s' }).value(ctx(), '')).resolves.toBe(0);
  });

  it('hostValue and hostField select how the host is named', async () => {
    docs.push({ '@timestamp': Date.now() - 1000, host: { name: '10.0.0.1' }, status: 200 });
    await expect(monitor({ hostValue: '{{host.address}}' }).value(ctx(), '')).resolves.toBe(1);
    expect(countBody({ hostField: 'hostname', timeField: 'ts', window: 1500, lag: 0 }, 'h', '')).toEqual({
      query: { bool: { filter: [{ range: { ts: { gte: 'now-2s', lt: 'now' } } }, { term: { hostname: 'h' } }] } },
    });
  });

  it('an index that matches nothing (404) is an error, not 0', async () => {
    await expect(monitor({ index: 'logs-missing' }).value(ctx(), '')).rejects.toThrow(
      /index logs-missing not found \(index_not_found_exception: no such index/,
    );
  });

  it('failed shards make the count untrustworthy', async () => {
    mode = 'shards';
    await expect(monitor().value(ctx(), '')).rejects.toThrow(/2 of 5 shards failed \(query_shard_exception/);
  });

  it('sends an API key or basic auth; HTTP 401 is an error without the secret', async () => {
    const env = makeEnv({ env: { ES_KEY: 'a2V5OnNlY3JldA==' } });
    await monitor({ apiKey: { env: 'ES_KEY' } }, env).value(ctx(), '');
    expect(requests[0]!.auth).toBe('ApiKey a2V5OnNlY3JldA==');
    await monitor({ username: { env: 'U' }, password: { env: 'P' } }, makeEnv({ env: { U: 'elastic', P: 'changeme' } })).value(ctx(), '');
    expect(requests[1]!.auth).toBe(`Basic ${Buffer.from('elastic:changeme').toString('base64')}`);
    mode = 'auth';
    const err = await monitor({ apiKey: { env: 'ES_KEY' } }, env)
      .value(ctx(), '')
      .catch((e: Error) => e);
    expect(String(err)).toMatch(/HTTP 401: security_exception/);
    expect(String(err)).not.toContain('a2V5OnNlY3JldA==');
  });

  it('options: strict, defaults, exclusive auth', () => {
    const o = elasticsearchMonitor.options.parse({ url: base, index: 'a' });
    expect(o).toMatchObject({ hostField: 'host.name', timeField: '@timestamp', window: 60_000, lag: 0 });
    expect(elasticsearchMonitor.options.safeParse({ url: base, index: 'a', size: 1 }).success).toBe(false);
    expect(
      elasticsearchMonitor.options.safeParse({ url: base, index: 'a', apiKey: { env: 'K' }, username: { env: 'U' }, password: { env: 'P' } }).success,
    ).toBe(false);
  });
});
