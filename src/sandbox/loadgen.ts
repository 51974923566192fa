import http from 'node:http';
import { SERVED_BY_HEADER } from '../gates/served-by.js';

const MAX_RECORDS = 100_000;

/**
 * A steady request rate against the router (public traffic: no gray header), recording every failed request.
 * Requests are fired on a fixed schedule whatever the latency, so a slow or stuck host shows up as failures
 * (timeouts) instead of silently lowering the rate.
 */
export interface Failure {
  at: string;
  status?: number;
  error: string;
}

/** One request as the train demo's summary reads it (kept with `record`). */
export interface RequestRecord {
  /** Sent at (ms since the epoch). */
  t: number;
  /** Time to the answer (or failure); -1 while in flight. */
  ms: number;
  status?: number;
  /** The answer's served-by header (train sandbox). */
  servedBy?: string;
}

export interface LoadStats {
  running: boolean;
  rps: number;
  since: string;
  sent: number;
  ok: number;
  failed: number;
  inFlight: number;
  byVersion: Record<string, number>;
  byGroup: Record<string, number>;
  /** The most recent failures (at most 100 kept; `failed` counts all). */
  failures: Failure[];
}

export class LoadGenerator {
  private timer?: NodeJS.Timeout;
  private stats!: LoadStats;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  /** With `record`: every request of the run (at most MAX_RECORDS, the oldest dropped). */
  private log: RequestRecord[] = [];

  constructor(
    private readonly target: { host: string; port: number },
    private rps = 20,
    private readonly timeoutMs = 10_000,
    private readonly opts: { record?: boolean } = {},
  ) {
    this.reset();
  }

  /** The finished requests (those still in flight have no outcome yet). */
  records(): RequestRecord[] {
    return this.log.filter((r) => r.ms >= 0);
  }

  reset(): void {
    this.stats = {
      running: this.timer !== undefined,
      rps: this.rps,
      since: new Date().toISOString(),
      sent: 0,
      ok: 0,
      failed: 0,
      inFlight: 0,
      byVersion: {},
      byGroup: {},
      failures: [],
    };
    this.log = [];
  }

  start(rps = this.rps): void {
    this.stop();
    this.rps = rps;
    this.stats.rps = rps;
    this.stats.running = true;
    const every = 1000 / rps;
    let due = Date.now();
    // Catch up on missed ticks (timers drift under load) so the rate stays what was asked.
    this.timer = setInterval(
      () => {
        const now = Date.now();
        while (due <= now) {
          due += every;
          this.fire();
        }
      },
      Math.max(5, Math.min(50, every)),
    );
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stats.running = false;
  }

  snapshot(): LoadStats {
    return structuredClone(this.stats);
  }

  /** Resolves once every request already sent has finished. */
  async settle(maxMs = 15_000): Promise<void> {
    const end = Date.now() + maxMs;
    while (this.stats.inFlight > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  }

  private fail(status: number | undefined, error: string): void {
    const s = this.stats;
    s.failed++;
    s.failures.push({ at: new Date().toISOString(), status, error });
    if (s.failures.length > 100) s.failures.shift();
  }

  private fire(): void {
    const s = this.stats;
    s.sent++;
    s.inFlight++;
    let settled = false;
    const t = Date.now();
    const rec: RequestRecord | undefined = this.opts.record ? { t, ms: -1 } : undefined;
    if (rec) {
      this.log.push(rec);
      if (this.log.length > MAX_RECORDS) this.log.splice(0, this.log.length - MAX_RECORDS);
    }
    const done = (fn: () => void) => {
      if (settled) return;
      settled = true;
      s.inFlight--;
      if (rec) rec.ms = Date.now() - t;
      fn();
    };
    const req = http.get({ host: this.target.host, port: this.target.port, path: '/', agent: this.agent, timeout: this.timeoutMs }, (res) => {
      if (rec) {
        rec.status = res.statusCode;
        const sb = res.headers[SERVED_BY_HEADER];
        if (typeof sb === 'string') rec.servedBy = sb;
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('error', (err) => done(() => this.fail(res.statusCode, err.message)));
      res.on('end', () =>
        done(() => {
          if (res.statusCode !== 200) return this.fail(res.statusCode, body.slice(0, 200));
          s.ok++;
          try {
            const b = JSON.parse(body) as { version?: string; group?: string };
            if (b.version) s.byVersion[b.version] = (s.byVersion[b.version] ?? 0) + 1;
            if (b.group) s.byGroup[b.group] = (s.byGroup[b.group] ?? 0) + 1;
          } catch {
            /* counted as ok: the status said so */
          }
        }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
    req.on('error', (err) => done(() => this.fail(undefined, err.message)));
  }
}
