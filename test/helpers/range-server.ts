import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll } from 'vitest';

/**
 * A small server speaking Prometheus's query_range answer shape, for the judge's release path (a marginal verdict
 * pausing a release or a train): queries name `lat_<m>{group="GREEN"|"BLUE"}`; GREEN answers 3 series around
 * `greenMedian[m]`, BLUE 6 series around 0.25, one log-normal reading per step (seeded: the same verdicts every run).
 * Started once per test file; `url()` is its address.
 */
export function rangeServer(greenMedian: Record<string, number>): {
  url: () => string;
  judgeYaml: (o: { window: string; step: string; minSamples: number }) => string;
} {
  let server: Server;
  let url = '';
  let seed = 7;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const normal = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const f = new URLSearchParams(body || (req.url ?? '').split('?')[1]);
        const q = f.get('query')!;
        const [start, end, step] = [Number(f.get('start')), Number(f.get('end')), Number(f.get('step'))];
        const name = /lat_(\w)/.exec(q)![1]!;
        const green = q.includes('GREEN');
        const result = Array.from({ length: green ? 3 : 6 }, (_, h) => {
          const values: [number, string][] = [];
          for (let t = start; t <= end + 1e-9; t += step)
            values.push([Number(t.toFixed(3)), String((green ? greenMedian[name]! : 0.25) * Math.exp(0.1 * normal()))]);
          return { metric: { instance: `h${h}` }, values };
        });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: 'success', data: { resultType: 'matrix', result } }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  return {
    url: () => url,
    /** The playbook's `providers:` and `verify:` for a judge `canary` of metrics a (critical), b and c against this server. */
    judgeYaml: (o: { window: string; step: string; minSamples: number }) => `providers:
  prom: { type: prometheus, url: ${url} }
verify:
  - name: canary
    judge:
      monitor: prom
      window: ${o.window}
      step: ${o.step}
      minSamples: ${o.minSamples}
      pass: 90
      marginal: 60
      metrics:
        - { name: a, green: 'lat_a{group="GREEN"}', blue: 'lat_a{group="BLUE"}', critical: true }
        - { name: b, green: 'lat_b{group="GREEN"}', blue: 'lat_b{group="BLUE"}' }
        - { name: c, green: 'lat_c{group="GREEN"}', blue: 'lat_c{group="BLUE"}' }
`,
  };
}
