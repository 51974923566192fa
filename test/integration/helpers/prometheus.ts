import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import { join } from 'node:path';
import { freePort, requireBinary, startProcess, waitFor, type Server } from './process.js';

/**
 * A real Prometheus 2.x for integration tests (services.md §3), scraping small in-process metric servers that
 * stand in for the fleet's hosts. Start it once per test file; it needs ~5 s before the first scrape.
 */

export const PROMETHEUS_BIN = '/usr/bin/prometheus';

export function hasPrometheus(): boolean {
  return requireBinary(PROMETHEUS_BIN, 'apt-get install -y --no-install-recommends prometheus');
}

export interface ScrapeJob {
  job: string;
  targets: string[];
  labels?: Record<string, string>;
}

export interface Prometheus {
  url: string;
  server: Server;
  /** Instant query; the raw JSON envelope. */
  query(expr: string): Promise<any>;
  /** Wait until `expr` returns at least `min` series (e.g. every target scraped once). */
  waitForSeries(expr: string, min: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startPrometheus(dir: string, jobs: ScrapeJob[]): Promise<Prometheus> {
  const port = await freePort();
  const home = join(dir, 'prom');
  mkdirSync(join(home, 'data'), { recursive: true });
  // JSON is valid YAML: no YAML writer needed.
  const config = {
    global: { scrape_interval: '1s', evaluation_interval: '1s', scrape_timeout: '900ms' },
    scrape_configs: jobs.map((j) => ({ job_name: j.job, static_configs: [{ targets: j.targets, labels: j.labels ?? {} }] })),
  };
  writeFileSync(join(home, 'prometheus.yml'), JSON.stringify(config, null, 2));
  const server = startProcess(
    PROMETHEUS_BIN,
    [
      `--config.file=${join(home, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(home, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { dir: home, name: 'prometheus' },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/-/ready`)).ok, 'prometheus /-/ready', { server, timeoutMs: 20_000 });
  const query = async (expr: string) => (await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`)).json();
  return {
    url,
    server,
    query,
    async waitForSeries(expr, min, timeoutMs = 30_000) {
      await waitFor(async () => ((await query(expr)) as any)?.data?.result?.length >= min, `prometheus: ${expr} (${min} series)`, {
        server,
        timeoutMs,
        everyMs: 200,
      });
    },
    stop: () => server.stop('SIGTERM', 5_000),
  };
}

export interface Traffic {
  /** Requests per second this host serves right now. */
  rps: number;
  /** Share of those requests that fail (0..1). */
  errorRatio?: number;
  /** Requests in flight (a gauge). */
  inflight?: number;
  /** Gauge exposed as app_latency_p99_seconds. */
  p99?: number;
}

/**
 * One simulated host: an HTTP server on 127.0.0.1 exposing counters in the text format. A 100 ms ticker adds
 * requests at the rate `traffic()` returns, so a drained host's counters stop moving and rate() goes to 0.
 */
export class MetricTarget {
  requests = 0;
  errors = 0;
  private ticker?: NodeJS.Timeout;
  private http?: HttpServer;
  port = 0;

  constructor(public traffic: () => Traffic) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.http = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404);
        return res.end();
      }
      const t = this.traffic();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(
        [
          '# TYPE app_requests_total counter',
          `app_requests_total ${this.requests}`,
          '# TYPE app_errors_total counter',
          `app_errors_total ${this.errors}`,
          '# TYPE app_inflight gauge',
          `app_inflight{path="/api"} ${t.inflight ?? (t.rps > 0 ? Math.max(1, Math.round(t.rps / 10)) : 0)}`,
          `app_inflight{path="/health"} 0`,
          '# TYPE app_latency_p99_seconds gauge',
          `app_latency_p99_seconds ${t.p99 ?? 0.2}`,
          '',
        ].join('\n'),
      );
    });
    await new Promise<void>((r) => this.http!.listen(0, '127.0.0.1', r));
    this.port = (this.http.address() as { port: number }).port;
    this.ticker = setInterval(() => {
      const t = this.traffic();
      const n = t.rps / 10;
      this.requests += n;
      this.errors += n * (t.errorRatio ?? 0);
    }, 100);
    return this;
  }

  async stop(): Promise<void> {
    clearInterval(this.ticker);
    this.http?.closeAllConnections();
    await new Promise<void>((r) => (this.http ? this.http.close(() => r()) : r()));
  }
}
