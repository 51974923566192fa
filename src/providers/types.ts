import type { z } from 'zod';
import type { Host } from '../playbook/types.js';
import type { Transport } from '../transport/types.js';
import type { Secrets } from '../util/secrets.js';

/** The result of a read-only probe. `observed` says what was seen when not done (shown live and on failure). */
export type Check = { done: true; observed?: string } | { done: false; observed: string };

/** What a provider gets for one host: the host, its template values and the doors to the outside. */
export interface ProviderContext {
  host: Host;
  /** Render a template string for this host ({{host.address}} …). Not shell-quoted. `over` replaces some values. */
  render(template: string, over?: { version?: string }): string;
  transport: Transport;
  signal: AbortSignal;
  /** A line for the host's log file (never put secrets in it). */
  log(line: string): void;
  /** Saved data from an earlier, interrupted attempt of the same step (resume), if any. */
  previous?: unknown;
}

/**
 * A system a host is drained from (registry, MQ, scheduler, load balancer).
 * Every method is idempotent: resume may repeat any of them.
 */
export interface Provider {
  /** Take the host out (weight 0, consumers unbound, node offline). Returns what restore needs (JSON-serialisable, no secrets). */
  drain(ctx: ProviderContext): Promise<unknown>;
  /** Read back from the system itself whether the host is out. Read-only. Unknown state is `done: false`, never drained. */
  isDrained(ctx: ProviderContext): Promise<Check>;
  /** Undo what drain changed, and nothing else (a group written by relabel in between stays). */
  restore(ctx: ProviderContext, saved: unknown): Promise<void>;
  isRestored?(ctx: ProviderContext, saved: unknown): Promise<Check>;
  /** Move the host into a group (GREEN). Returns what restoreLabel needs. */
  relabel?(ctx: ProviderContext, group: string): Promise<unknown>;
  /** Undo relabel (rollback). */
  restoreLabel?(ctx: ProviderContext, saved: unknown): Promise<void>;
  /** Release connections (ZooKeeper sessions …). */
  close?(): Promise<void>;
  /**
   * The hosts the registry lists for `service` (inventory: {provider, service}), one per address, named after it,
   * as inventory entries ({name, address, labels}). Optional: registries that cannot answer leave it out.
   */
  listHosts?(
    service: string,
    signal: AbortSignal,
  ): Promise<{ name: string; address: string; labels?: Record<string, string>; vars?: Record<string, unknown> }[]>;
  /**
   * Warm-up (weight-based providers): bring the host back in as restore does, but at `percent` (1–100) of the weight
   * it had when drained (`saved`). Idempotent; restore afterwards puts back exactly the saved weight.
   */
  setWeight?(ctx: ProviderContext, saved: unknown, percent: number): Promise<void>;
  /**
   * Preflight (read-only): does this system know the host (registered, a member, listed)? `done: false` names what
   * was looked for; a failed query is `done: false` too (unknown is never "registered").
   */
  isRegistered?(ctx: ProviderContext): Promise<Check>;
}

/** A monitoring system. `value` fails (throws) on a failed query, an empty result, NaN or stale data: never a fake 0. */
export interface Monitor {
  value(ctx: ProviderContext, query: string): Promise<number>;
  /** A range query (Prometheus query_range): every series with its samples; NaN/±Inf kept as they came. Optional. */
  range?(ctx: ProviderContext, query: string, window: { start: number; end: number; stepMs: number }): Promise<RangeSeries[]>;
  close?(): Promise<void>;
}

/** One series of a range query: its labels and its samples (t in ms since the epoch). */
export interface RangeSeries {
  labels: Record<string, string>;
  samples: { t: number; v: number }[];
}

export type ProviderRole = 'drain' | 'monitor';

export interface ProviderEnv {
  /** Directory of the playbook: resolve relative paths against it. */
  dir: string;
  secrets: Secrets;
  transport: Transport;
}

/**
 * One provider type (`type: dubbo-zookeeper` …): one file in src/providers/<kind>/ plus one line in src/providers/index.ts.
 * `options` validates everything under the provider entry except `type`, and must be strict (unknown keys are errors).
 */
export interface ProviderType<O = any> {
  type: string;
  role: ProviderRole;
  options: z.ZodType<O, z.ZodTypeDef, any>;
  create(options: O, env: ProviderEnv): Provider | Monitor;
  /** For the reference (graywave explain, docs/reference.md). */
  doc?: import('../reference/doc.js').TypeDoc;
  /** What drain/check/restore/relabel (or a monitor query) will read and write for a host: for `plan`; read-only, contacts nothing. */
  describe?(options: O, ctx: import('../reference/doc.js').DescribeContext): import('../reference/doc.js').ProviderEffects;
}
