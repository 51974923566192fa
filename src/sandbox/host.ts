import http from 'node:http';
import { Chain, SERVED_BY_HEADER, type ChainOptions } from './chain.js';
import { listen, sendJson, type RunningServer } from './registry.js';

/**
 * One sandbox host: a small HTTP service answering with its version and group. It counts application requests
 * in flight (never the /metrics scrape or admin calls), exposes Prometheus text metrics, simulates an MQ consumer
 * and a scheduler membership that can be suspended through admin endpoints, and drains gracefully on stop.
 */
export interface HostOptions {
  name: string;
  address: string;
  port: number;
  version: string;
  group: string;
  /** Simulated work per request, ms (uniform in [min, max]). */
  workMs?: [number, number];
  /** /health answers 503 (fault injection: a deploy that comes up unhealthy). */
  failHealth?: boolean;
  /** Share of application requests answered with 500 while the host is in group GREEN (fault injection). */
  errorRate?: number;
  /** A web-tier (BFE) host: serves each request by calling these services through the registry (src/sandbox/chain.ts). */
  calls?: Omit<ChainOptions, 'group'>;
}

export interface HostServer extends RunningServer {
  state: HostState;
  /** Stop accepting, wait for in-flight requests (at most graceMs), then close. */
  drainAndClose(graceMs?: number): Promise<void>;
}

export interface HostState {
  inFlight: number;
  /** Requests held open by the `stuck` fault: counted in flight, never finished while it lasts. */
  stuck: number;
  requests: number;
  errors: number;
  consumer: 'consuming' | 'suspended';
  scheduler: 'online' | 'offline';
  messages: number;
  jobs: number;
  errorRate: number;
  failHealth: boolean;
}

const ESC = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (data += c));
    req.on('end', () => resolve(data));
    req.on('error', () => resolve(data));
  });
}

export async function startHost(o: HostOptions): Promise<HostServer> {
  const [minMs, maxMs] = o.workMs ?? [10, 60];
  const state: HostState = {
    inFlight: 0,
    stuck: 0,
    requests: 0,
    errors: 0,
    consumer: 'consuming',
    scheduler: 'online',
    messages: 0,
    jobs: 0,
    errorRate: o.errorRate ?? 0,
    failHealth: o.failHealth ?? false,
  };
  let draining = false;
  const chain = o.calls ? new Chain({ ...o.calls, group: o.group }) : undefined;
  const idleWaiters: (() => void)[] = [];
  const settle = () => {
    if (state.inFlight + state.stuck === 0) idleWaiters.splice(0).forEach((w) => w());
  };

  // The simulated MQ consumer and scheduler only do work while active: their counters show suspend works.
  const ticker = setInterval(() => {
    if (state.consumer === 'consuming') state.messages++;
    if (state.scheduler === 'online') state.jobs++;
  }, 100);
  ticker.unref();

  const labels = () => `host="${ESC(o.name)}",version="${ESC(o.version)}",group="${ESC(o.group)}"`;
  const metrics = () =>
    [
      '# HELP sandbox_requests_total Application requests served.',
      '# TYPE sandbox_requests_total counter',
      `sandbox_requests_total{${labels()}} ${state.requests}`,
      '# HELP sandbox_requests_in_flight Application requests being served now (the drain signal).',
      '# TYPE sandbox_requests_in_flight gauge',
      `sandbox_requests_in_flight{${labels()}} ${state.inFlight + state.stuck}`,
      '# HELP sandbox_request_errors_total Application requests answered with an error.',
      '# TYPE sandbox_request_errors_total counter',
      `sandbox_request_errors_total{${labels()}} ${state.errors}`,
      '# HELP sandbox_consumer_active 1 while the simulated MQ consumer is consuming.',
      '# TYPE sandbox_consumer_active gauge',
      `sandbox_consumer_active{${labels()}} ${state.consumer === 'consuming' ? 1 : 0}`,
      '# HELP sandbox_messages_consumed_total Messages taken by the simulated consumer.',
      '# TYPE sandbox_messages_consumed_total counter',
      `sandbox_messages_consumed_total{${labels()}} ${state.messages}`,
      '# HELP sandbox_scheduler_online 1 while the host is a member of the simulated scheduler.',
      '# TYPE sandbox_scheduler_online gauge',
      `sandbox_scheduler_online{${labels()}} ${state.scheduler === 'online' ? 1 : 0}`,
      '# HELP sandbox_jobs_run_total Jobs run by the simulated scheduler on this host.',
      '# TYPE sandbox_jobs_run_total counter',
      `sandbox_jobs_run_total{${labels()}} ${state.jobs}`,
      '',
    ].join('\n');

  const status = () => ({
    host: o.name,
    version: o.version,
    group: o.group,
    consumer: state.consumer,
    scheduler: state.scheduler,
    inFlight: state.inFlight + state.stuck,
    requests: state.requests,
    errors: state.errors,
    stuck: state.stuck > 0,
    errorRate: state.errorRate,
    draining,
  });

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://host');
    const path = url.pathname;
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      return res.end(metrics());
    }
    if (path === '/health') {
      if (state.failHealth) return sendJson(res, 503, { status: 'DOWN', reason: 'injected fault: health' });
      return sendJson(res, draining ? 503 : 200, { status: draining ? 'DRAINING' : 'UP', version: o.version, group: o.group });
    }
    if (path.startsWith('/_admin/')) {
      const action = path.slice('/_admin/'.length);
      if (action === 'status') return sendJson(res, 200, status());
      if (req.method !== 'POST') return sendJson(res, 405, { error: 'use POST' });
      switch (action) {
        case 'consumer/suspend':
          state.consumer = 'suspended';
          break;
        case 'consumer/resume':
          state.consumer = 'consuming';
          break;
        case 'scheduler/offline':
          state.scheduler = 'offline';
          break;
        case 'scheduler/online':
          state.scheduler = 'online';
          break;
        case 'fault': {
          let f: { stuck?: boolean; errorRate?: number; health?: boolean };
          try {
            f = JSON.parse((await readBody(req)) || '{}');
          } catch {
            return sendJson(res, 400, { error: 'body must be JSON' });
          }
          if (f.stuck !== undefined) state.stuck = f.stuck ? 1 : 0;
          if (typeof f.errorRate === 'number') state.errorRate = Math.min(1, Math.max(0, f.errorRate));
          if (f.health !== undefined) state.failHealth = !f.health;
          settle();
          break;
        }
        default:
          return sendJson(res, 404, { error: `unknown admin action ${action}` });
      }
      return sendJson(res, 200, status());
    }

    // An application request.
    state.inFlight++;
    state.requests++;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      state.inFlight--;
      settle();
    };
    res.on('close', finish);
    if (chain) {
      const a = await chain.serve(req);
      if (a.status !== 200) state.errors++;
      res.writeHead(a.status, { 'content-type': 'application/json', [SERVED_BY_HEADER]: a.servedBy });
      res.end(JSON.stringify({ host: o.name, version: o.version, group: o.group, ...a.body }));
      return finish();
    }
    const ms = Number(url.searchParams.get('ms') ?? minMs + Math.random() * (maxMs - minMs));
    setTimeout(
      () => {
        if (o.group === 'GREEN' && state.errorRate > 0 && Math.random() < state.errorRate) {
          state.errors++;
          sendJson(res, 500, { error: 'injected fault: errors', host: o.name, version: o.version, group: o.group });
        } else {
          sendJson(res, 200, { host: o.name, version: o.version, group: o.group });
        }
        finish();
      },
      Math.max(0, Math.min(ms, 60_000)),
    );
  });
  // Keep-alive sockets would keep a drained host's port busy after close(); the sandbox wants crisp stops.
  server.keepAliveTimeout = 1000;

  const running = await listen(server, o.address, o.port);
  return {
    ...running,
    state,
    async drainAndClose(graceMs = 30_000) {
      draining = true;
      clearInterval(ticker);
      // Stop accepting at once; established connections may still finish their request.
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections?.();
      if (state.inFlight + state.stuck > 0) {
        await Promise.race([new Promise<void>((r) => idleWaiters.push(r)), new Promise<void>((r) => setTimeout(r, graceMs).unref())]);
      }
      server.closeAllConnections?.();
      await closed;
    },
  };
}
