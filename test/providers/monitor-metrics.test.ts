import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricsMonitor, parseExposition, parseSelector, sumMatching } from '../../src/providers/monitor/metrics.js';
import type { Monitor } from '../../src/providers/types.js';
import { makeContext, makeEnv, makeHost } from '../helpers/contexts.js';

// A scrape in the text exposition format 0.0.4, as a Java/Go client library writes it.
const SCRAPE = `# HELP http_server_requests_active_seconds_active_count
# TYPE http_server_requests_active_seconds_active_count gauge
http_server_requests_active_seconds_active_count{application="shop",} 3.0
# HELP inflight_requests In-flight requests.
# TYPE inflight_requests gauge
inflight_requests{path="/api",method="GET"} 2
inflight_requests{path="/api",method="POST"} 1
inflight_requests{path="/health",method="GET"} 0
inflight_requests{path="/odd \\"quoted\\" }",method="GET"} 4 1700000000000
idle_requests 0
broken_gauge NaN
temperature_celsius -1.5e1
`;

let server: Server;
let port: number;
let body = SCRAPE;
let status = 200;
const paths: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    paths.push(req.url!);
    res.writeHead(status, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function monitor(): Monitor {
  return metricsMonitor.create(
    metricsMonitor.options.parse({ url: 'http://{{host.address}}:{{host.vars.port}}/metrics', timeout: '2s' }),
    makeEnv(),
  ) as Monitor;
}
const ctx = () => makeContext({ host: makeHost('app-01', '127.0.0.1', { vars: { port } }) });

describe('text exposition parser', () => {
  it('reads names, escaped label values, trailing commas and timestamps', () => {
    const s = parseExposition(SCRAPE);
    expect(s.find((x) => x.labels.path?.includes('quoted'))).toEqual({
      name: 'inflight_requests',
      labels: { path: '/odd "quoted" }', method: 'GET' },
      value: 4,
    });
    expect(s.find((x) => x.name === 'http_server_requests_active_seconds_active_count')!.labels).toEqual({ application: 'shop' });
    expect(s.find((x) => x.name === 'temperature_celsius')!.value).toBe(-15);
    expect(parseExposition('x +Inf\ny -Inf')).toEqual([
      { name: 'x', labels: {}, value: Infinity },
      { name: 'y', labels: {}, value: -Infinity },
    ]);
  });

  it('reports a malformed line instead of skipping it', () => {
    expect(() => parseExposition('ok 1\nbad{a="1" 2')).toThrow(/line 2/);
    expect(() => parseExposition('x one')).toThrow(/bad sample value/);
  });

  it('selectors: name, and name{label="v",…}; only = matching', () => {
    expect(parseSelector(' inflight_requests ')).toEqual({ name: 'inflight_requests', labels: {} });
    expect(parseSelector('inflight_requests{path="/api",method="GET"}')).toEqual({ name: 'inflight_requests', labels: { path: '/api', method: 'GET' } });
    expect(() => parseSelector('inflight_requests{path!="/api"}')).toThrow(/only = matching/);
    expect(() => parseSelector('sum(x)')).toThrow(/not a metric selector/);
    const s = parseExposition(SCRAPE);
    expect(sumMatching(s, parseSelector('inflight_requests{method="GET"}'))).toEqual({ sum: 6, count: 3 });
  });
});

describe('metrics monitor', () => {
  it('sums all matching samples from the host URL rendered per host', async () => {
    await expect(monitor().value(ctx(), 'inflight_requests')).resolves.toBe(7);
    await expect(monitor().value(ctx(), 'inflight_requests{path="/api"}')).resolves.toBe(3);
    await expect(monitor().value(ctx(), 'idle_requests')).resolves.toBe(0);
    expect(paths.at(-1)).toBe('/metrics');
  });

  it('no matching sample is "no data", never 0', async () => {
    await expect(monitor().value(ctx(), 'inflight_requests{path="/nope"}')).rejects.toThrow(/no data: no sample matches/);
    await expect(monitor().value(ctx(), 'absent_metric')).rejects.toThrow(/no data/);
  });

  it('NaN is an error', async () => {
    await expect(monitor().value(ctx(), 'broken_gauge')).rejects.toThrow(/NaN/);
  });

  it('HTTP errors and unparsable pages are errors', async () => {
    status = 503;
    body = 'down';
    await expect(monitor().value(ctx(), 'idle_requests')).rejects.toThrow(/HTTP 503/);
    status = 200;
    body = '<html>login</html>';
    await expect(monitor().value(ctx(), 'idle_requests')).rejects.toThrow(/cannot parse/);
    body = SCRAPE;
  });

  it('a host without the templated var fails clearly', async () => {
    await expect(monitor().value(makeContext(), 'idle_requests')).rejects.toThrow(/host app-01 has no vars.port/);
  });

  it('options are strict', () => {
    expect(metricsMonitor.options.safeParse({ url: 'http://x/metrics', interval: '1s' }).success).toBe(false);
  });
});
