import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import { http } from '../../transport/http.js';
import { resolveTls, tlsOptions, type TlsSettings } from '../../transport/tls.js';
import { duration } from '../../util/duration.js';
import type { Check, Provider, ProviderContext, ProviderEnv, ProviderType } from '../types.js';
import { CREATED_BY_GRAYWAVE, ZkProviderBase, removeOurEmptyParents, withCas, zkConnectionOptions, zkJoin, zkOptionsOf } from '../zk.js';

/*
 * LTS (light-task-scheduler) TaskTrackers (reference protocols.md §5.1).
 *
 * LTS has no remote offline switch (its node_online_offline_cmd is an empty stub), so this provider relies on an
 * app-side contract that the fleet implements once:
 *
 *   THE TASKTRACKER CONTRACT
 *   The TaskTracker application watches the znode <marker> (default /LTS/<cluster>/OFFLINE/<host address>,
 *   the address as the playbook names the host). While the node exists it stops pulling jobs (e.g. pauses its
 *   JobPullMachine or reports 0 available threads) and lets running jobs finish; when the node is deleted it pulls
 *   again. It must also check the node at start-up (a restarted TaskTracker must not pull while the marker exists).
 *   The node's data is informational JSON written by graywave; the app must not depend on it.
 *
 *   drain      create the marker (persistent; missing parents are created and removed again on restore)
 *   isDrained  the marker exists and, when `runningCheck` is set, the host reports 0 running jobs
 *   restore    delete the marker, if graywave created it
 */

const runningCheck = z.union([
  z
    .object({
      /** Shell command on the host (templated, values shell-quoted) that prints the number of running jobs. */
      command: z.string().min(1),
      timeout: duration.default('30s'),
    })
    .strict(),
  z
    .object({
      /** URL (templated) answering the number of running jobs, as the body or in JSON field `field`. */
      http: z.string().min(1),
      /** Dot path into the JSON answer, e.g. `data.running`. */
      field: z.string().min(1).optional(),
      timeout: duration.default('10s'),
    })
    .strict(),
]);

const options = z
  .object({
    ...zkConnectionOptions,
    /** LTS cluster name (`clusterName` of the nodes). */
    cluster: z.string().min(1),
    /** LTS registry root. */
    root: z.string().regex(/^\//, 'must start with /').default('/LTS'),
    /** Marker znode (templated). Default <root>/<cluster>/OFFLINE/{{host.address}}. */
    marker: z.string().regex(/^\//, 'must start with /').optional(),
    runningCheck: runningCheck.optional(),
    /** HTTPS of `runningCheck.http` (ZooKeeper itself is not HTTP): CA file(s), client certificate, insecureSkipVerify (src/transport/tls.ts). */
    tls: tlsOptions.optional(),
  })
  .strict();
type Options = z.infer<typeof options>;

interface Saved {
  marker: string;
  /** False when the marker was already there (someone else's): restore leaves it. */
  created: boolean;
}

const MARKER_BY = 'graywave';

/** Reads `running jobs` as a number from a command's output or an HTTP body (JSON field or bare number). */
export function runningCount(text: string, field?: string): number | undefined {
  let value: unknown = text.trim();
  if (field) {
    try {
      value = JSON.parse(text);
    } catch {
      return undefined;
    }
    for (const k of field.split('.')) value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[k] : undefined;
  }
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && /^\d+$/.test(value.trim())) return Number(value.trim());
  return undefined;
}

class LtsZookeeper extends ZkProviderBase implements Provider {
  private readonly label: string;
  private readonly tls?: TlsSettings;
  constructor(
    private readonly o: Options,
    env: ProviderEnv,
  ) {
    const label = `lts-zookeeper (${o.cluster})`;
    super(zkOptionsOf(o, label));
    this.label = label;
    this.tls = resolveTls(o.tls, env);
  }

  private markerOf(ctx: ProviderContext): string {
    return ctx.render(this.o.marker ?? zkJoin(this.o.root, this.o.cluster, 'OFFLINE', '{{host.address}}'));
  }

  async drain(ctx: ProviderContext): Promise<Saved> {
    const marker = this.markerOf(ctx);
    const prev = ctx.previous as Saved | undefined;
    const existing = await this.zk.get(marker);
    if (existing) {
      const ours = existing.data.toString('utf8').includes(`"by":"${MARKER_BY}"`) || (prev?.marker === marker && prev.created);
      ctx.log(`lts: offline marker ${marker} already there${ours ? '' : ' (not written by graywave: left in place on restore)'}`);
      return { marker, created: ours };
    }
    const data = JSON.stringify({ by: MARKER_BY, host: ctx.host.name, at: new Date().toISOString() });
    // Another host's restore may remove the shared OFFLINE folder between our check and our create: redo then.
    await withCas(this.label, `drain ${ctx.host.name}`, () => this.zk.createWithParents(marker, data, CREATED_BY_GRAYWAVE));
    ctx.log(`lts: offline marker ${marker} created`);
    return { marker, created: true };
  }

  async isDrained(ctx: ProviderContext): Promise<Check> {
    const marker = this.markerOf(ctx);
    try {
      if (!(await this.zk.exists(marker))) return { done: false, observed: `offline marker ${marker} is missing` };
    } catch (err) {
      return { done: false, observed: `cannot read ZooKeeper: ${(err as Error).message}` };
    }
    const rc = this.o.runningCheck;
    if (!rc) return { done: true, observed: `offline marker ${marker} present` };
    let n: number | undefined;
    let raw: string;
    if ('command' in rc) {
      const shell = (ctx as ProviderContext & { renderShell?: (t: string) => string }).renderShell ?? ctx.render;
      const res = await ctx.transport.exec(ctx.host, shell(rc.command), { timeoutMs: rc.timeout, signal: ctx.signal });
      if (res.code !== 0)
        return { done: false, observed: `running-jobs command failed (exit ${res.code ?? res.signal ?? 'timeout'}): ${res.stderr.trim().slice(0, 200)}` };
      raw = res.stdout;
      n = runningCount(raw);
    } else {
      try {
        const res = await http(ctx.render(rc.http), { timeoutMs: rc.timeout, signal: ctx.signal, tls: this.tls, log: ctx.log });
        if (res.status !== 200) return { done: false, observed: `running-jobs check answered HTTP ${res.status}` };
        raw = res.text;
        n = runningCount(raw, rc.field);
      } catch (err) {
        return { done: false, observed: `running-jobs check failed: ${(err as Error).message}` };
      }
    }
    if (n === undefined) return { done: false, observed: `running-jobs check answered ${JSON.stringify(raw.trim().slice(0, 100))}, not a number` };
    return n === 0 ? { done: true, observed: 'marker present, 0 running jobs' } : { done: false, observed: `${n} jobs still running` };
  }

  async restore(ctx: ProviderContext, saved: unknown): Promise<void> {
    const s = saved as Saved | undefined;
    if (!s || typeof s.marker !== 'string') throw new ProviderError(`${this.label}: restore of ${ctx.host.name} got no drain record it understands`, false);
    if (!s.created) return ctx.log(`lts: ${s.marker} was not created by graywave, left in place`);
    const node = await this.zk.get(s.marker);
    if (node && node.data.toString('utf8').includes(`"by":"${MARKER_BY}"`)) await this.zk.remove(s.marker, node.version);
    else if (node) return ctx.log(`lts: ${s.marker} was rewritten by someone else, left in place`);
    await removeOurEmptyParents(this.zk, s.marker, '/');
    ctx.log(`lts: offline marker ${s.marker} deleted`);
  }

  /** This host's TaskTracker nodes: `TASK_TRACKER:\\\\<ip>[:port]?…` under <root>/<cluster>/NODES/TASK_TRACKER (undefined: no such folder). */
  private async trackerNodes(ctx: ProviderContext): Promise<string[] | undefined> {
    const dir = zkJoin(this.o.root, this.o.cluster, 'NODES', 'TASK_TRACKER');
    const all = await this.zk.children(dir);
    if (all === undefined) return undefined;
    const ip = ctx.host.address;
    return all.filter((n) => {
      const m = /^TASK_TRACKER:\\\\([^?]*?)(?::\d+)?(?:\?|$)/.exec(n);
      return m?.[1] === ip;
    });
  }

  /**
   * Serving again: the offline marker graywave created is gone, and when the cluster lists TaskTracker nodes
   * (<root>/<cluster>/NODES/TASK_TRACKER), one of this host is online (its ephemeral node: the app runs and pulls).
   */
  async isRestored(ctx: ProviderContext, saved: unknown): Promise<Check> {
    const s = saved as Saved | undefined;
    if (!s || typeof s.marker !== 'string') return { done: false, observed: 'saved drain data is missing or malformed' };
    try {
      if (s.created && (await this.zk.exists(s.marker))) return { done: false, observed: `offline marker ${s.marker} still there` };
      const nodes = await this.trackerNodes(ctx);
      if (nodes !== undefined && nodes.length === 0)
        return {
          done: false,
          observed: `no TaskTracker node of ${ctx.host.address} online under ${zkJoin(this.o.root, this.o.cluster, 'NODES', 'TASK_TRACKER')}`,
        };
      const marker = s.created ? `marker ${s.marker} gone` : `marker ${s.marker} was not graywave's: left in place`;
      return { done: true, observed: nodes ? `${marker}, ${nodes.length} TaskTracker node(s) online` : marker };
    } catch (err) {
      return { done: false, observed: `state unknown: cannot read ZooKeeper: ${(err as Error).message}` };
    }
  }

  /** Preflight: a TaskTracker node of this host is online in the cluster. */
  async isRegistered(ctx: ProviderContext): Promise<Check> {
    try {
      const nodes = await this.trackerNodes(ctx);
      if (nodes === undefined)
        return { done: false, observed: `no ${zkJoin(this.o.root, this.o.cluster, 'NODES', 'TASK_TRACKER')} in ZooKeeper (cluster ${this.o.cluster})` };
      if (nodes.length === 0) return { done: false, observed: `no TaskTracker node of ${ctx.host.address} in cluster ${this.o.cluster}` };
      return { done: true, observed: `${nodes.length} TaskTracker node(s) of ${ctx.host.address}` };
    } catch (err) {
      return { done: false, observed: `state unknown: cannot read ZooKeeper: ${(err as Error).message}` };
    }
  }

  override async close(): Promise<void> {
    await super.close();
    await this.tls?.close();
  }
}

export const ltsZookeeper: ProviderType<Options> = {
  type: 'lts-zookeeper',
  role: 'drain',
  options,
  doc: {
    summary:
      'LTS TaskTrackers: drain creates an offline marker znode the TaskTracker watches (it pulls no new jobs while it exists); restore deletes it. See the contract in the README.',
    checkedAgainst: "real ZooKeeper 3.8 (Debian); the marker contract is graywave's own (LTS has no remote offline switch)",
    example:
      'type: lts-zookeeper\nconnect: zk1:2181\ncluster: order_cluster\n# runningCheck: { http: "http://{{host.address}}:8719/jobs", field: data.running }',
    options: {
      connect: 'ZooKeeper connection string.',
      cluster: 'LTS cluster name (`clusterName` of the nodes).',
      root: 'LTS registry root.',
      marker: 'Marker znode (a template). Default <root>/<cluster>/OFFLINE/{{host.address}}.',
      runningCheck: 'How many jobs still run on the host: `{ command: "..." }` printing a number, or `{ http: URL, field: a.b }`; drained needs 0.',
      tls: 'HTTPS of runningCheck.http.',
    },
  },
  describe: (o, c) => {
    const marker = c.render(o.marker ?? `${o.root.replace(/\/$/, '')}/${o.cluster}/OFFLINE/{{host.address}}`);
    return {
      drain: `ZooKeeper ${o.connect}: creates ${marker}`,
      check: `${marker} exists${o.runningCheck ? ' and the host reports 0 running jobs' : ''}`,
      restore: `deletes ${marker} (if graywave created it)`,
    };
  },
  create: (o, env) => new LtsZookeeper(o, env),
};
