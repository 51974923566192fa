import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import type { Check, Provider, ProviderContext, ProviderType } from '../types.js';
import { ZkProviderBase, withCas, zkConnectionOptions, zkJoin, zkOptionsOf, type ZkOp } from '../zk.js';

/*
 * ElasticJob (apache/shardingsphere-elasticjob) servers (reference protocols.md §5.2).
 *
 *   drain      /<namespace>/<job>/servers/<ip> := DISABLED for every job that has the server (or the listed jobs),
 *              all in one ZooKeeper transaction; the previous content of each node goes into the journal
 *   isDrained  every such node reads DISABLED, and no sharding item of those jobs owned by <ip>@-@… has `running`
 *   restore    writes the previous content back where it still reads DISABLED
 *
 * Note: a job instance that starts rewrites servers/<ip> with ENABLED (SetUpFacade). A deploy between drain and
 * restore therefore re-enables the host by itself; isDrained then reports it, and restore has nothing left to do.
 */

const options = z
  .object({
    ...zkConnectionOptions,
    /** Registry-center namespace (the ZooKeeper root of the jobs, without the slash). */
    namespace: z.string().min(1),
    /** Only these jobs. Default: every job that has this server. */
    jobs: z.array(z.string().min(1)).min(1).optional(),
    /** Server name under servers/ (templated). Default {{host.address}} (ElasticJob uses the IP). */
    server: z.string().min(1).default('{{host.address}}'),
  })
  .strict();
type Options = z.infer<typeof options>;

interface Saved {
  server: string;
  /** Job name → content of servers/<ip> before the drain. */
  previous: Record<string, string>;
}

const DISABLED = 'DISABLED';

class ElasticJobZookeeper extends ZkProviderBase implements Provider {
  private readonly label: string;
  private readonly root: string;
  constructor(private readonly o: Options) {
    const label = `elasticjob-zookeeper (${o.namespace})`;
    super(zkOptionsOf(o, label));
    this.label = label;
    this.root = zkJoin(o.namespace);
  }

  private serverPath(job: string, server: string) {
    return zkJoin(this.root, job, 'servers', server);
  }

  /** Jobs that have this server registered. */
  private async jobsOf(server: string): Promise<string[]> {
    const candidates = this.o.jobs ?? (await this.zk.children(this.root)) ?? [];
    const out: string[] = [];
    for (const job of candidates) if (await this.zk.exists(this.serverPath(job, server))) out.push(job);
    return out.sort();
  }

  async drain(ctx: ProviderContext): Promise<Saved> {
    const server = ctx.render(this.o.server);
    const prev = ctx.previous as Saved | undefined;
    return withCas(this.label, `drain ${ctx.host.name}`, async () => {
      const jobs = await this.jobsOf(server);
      if (jobs.length === 0) {
        throw new ProviderError(
          `${this.label}: ${ctx.host.name}: no job has server ${server} under ${this.root}${this.o.jobs ? ` (jobs ${this.o.jobs.join(', ')})` : ''}; check namespace/server, or that the jobs ran on this host`,
          false,
        );
      }
      const previous: Record<string, string> = {};
      const ops: ZkOp[] = [];
      for (const job of jobs) {
        const path = this.serverPath(job, server);
        const node = await this.zk.get(path);
        if (!node) continue;
        const content = node.data.toString('utf8');
        // A repeated drain keeps the content recorded by the first attempt, not the DISABLED it wrote.
        previous[job] = prev?.previous?.[job] ?? content;
        if (content !== DISABLED) ops.push({ op: 'set', path, data: DISABLED, version: node.version });
      }
      await this.zk.multi(ops);
      ctx.log(`elasticjob: ${server} DISABLED in ${jobs.join(', ')}`);
      return { server, previous };
    });
  }

  async isDrained(ctx: ProviderContext): Promise<Check> {
    const server = ctx.render(this.o.server);
    try {
      const jobs = await this.jobsOf(server);
      if (jobs.length === 0) return { done: false, observed: `no job has server ${server} under ${this.root}` };
      const enabled: string[] = [];
      const running: string[] = [];
      for (const job of jobs) {
        const node = await this.zk.get(this.serverPath(job, server));
        if (node && node.data.toString('utf8') !== DISABLED) enabled.push(`${job} (${node.data.toString('utf8') || 'empty'})`);
        const sharding = zkJoin(this.root, job, 'sharding');
        for (const item of (await this.zk.children(sharding)) ?? []) {
          const owner = (await this.zk.get(zkJoin(sharding, item, 'instance')))?.data.toString('utf8') ?? '';
          if (owner.startsWith(`${server}@-@`) && (await this.zk.exists(zkJoin(sharding, item, 'running')))) running.push(`${job}#${item}`);
        }
      }
      if (enabled.length > 0) return { done: false, observed: `not disabled (the app may have re-enabled it on start): ${enabled.join(', ')}` };
      if (running.length > 0) return { done: false, observed: `shards still running on ${server}: ${running.join(', ')}` };
      return { done: true, observed: `${server} disabled in ${jobs.length} jobs, no shard running` };
    } catch (err) {
      return { done: false, observed: `cannot read ZooKeeper: ${(err as Error).message}` };
    }
  }

  async restore(ctx: ProviderContext, saved: unknown): Promise<void> {
    const s = saved as Saved | undefined;
    if (!s || typeof s.server !== 'string' || typeof s.previous !== 'object') {
      throw new ProviderError(`${this.label}: restore of ${ctx.host.name} got no drain record it understands`, false);
    }
    await withCas(this.label, `restore ${ctx.host.name}`, async () => {
      const ops: ZkOp[] = [];
      for (const [job, content] of Object.entries(s.previous)) {
        const path = this.serverPath(job, s.server);
        const node = await this.zk.get(path);
        // Only where our DISABLED is still in place: an app that re-registered since wrote its own value.
        if (node && node.data.toString('utf8') === DISABLED && content !== DISABLED) ops.push({ op: 'set', path, data: content, version: node.version });
      }
      await this.zk.multi(ops);
      ctx.log(`elasticjob: ${s.server} restored in ${ops.length} jobs`);
    });
  }

  /**
   * Serving again: in every job drain changed, servers/<ip> no longer reads DISABLED, and a job instance of the host
   * (instances/<ip>@-@<pid>, ephemeral: the app is running) is online.
   */
  async isRestored(_ctx: ProviderContext, saved: unknown): Promise<Check> {
    const s = saved as Saved | undefined;
    if (!s || typeof s.server !== 'string' || typeof s.previous !== 'object') return { done: false, observed: 'saved drain data is missing or malformed' };
    const wrong: string[] = [];
    const jobs = Object.entries(s.previous)
      .filter(([, content]) => content !== DISABLED)
      .map(([job]) => job);
    try {
      for (const job of jobs) {
        const node = await this.zk.get(this.serverPath(job, s.server));
        const content = node?.data.toString('utf8');
        if (content === undefined) wrong.push(`${job}: servers/${s.server} missing`);
        else if (content === DISABLED) wrong.push(`${job}: servers/${s.server} still DISABLED`);
        const instances = (await this.zk.children(zkJoin(this.root, job, 'instances'))) ?? [];
        if (!instances.some((i) => i.startsWith(`${s.server}@-@`))) wrong.push(`${job}: no instance of ${s.server} online`);
      }
    } catch (err) {
      return { done: false, observed: `state unknown: cannot read ZooKeeper: ${(err as Error).message}` };
    }
    if (wrong.length) return { done: false, observed: wrong.join('; ') };
    return {
      done: true,
      observed: jobs.length ? `${s.server} enabled and online in ${jobs.join(', ')}` : `drain changed nothing (already disabled before): left so`,
    };
  }

  async isRegistered(ctx: ProviderContext): Promise<Check> {
    const server = ctx.render(this.o.server);
    try {
      const jobs = await this.jobsOf(server);
      if (jobs.length === 0)
        return { done: false, observed: `no job has server ${server} under ${this.root}${this.o.jobs ? ` (jobs ${this.o.jobs.join(', ')})` : ''}` };
      return { done: true, observed: `server ${server} in ${jobs.join(', ')}` };
    } catch (err) {
      return { done: false, observed: `state unknown: cannot read ZooKeeper: ${(err as Error).message}` };
    }
  }
}

export const elasticjobZookeeper: ProviderType<Options> = {
  type: 'elasticjob-zookeeper',
  role: 'drain',
  options,
  doc: {
    summary: "ElasticJob (Lite): drain sets the host's server node of every job (or the listed ones) to DISABLED; restore puts back what was there.",
    checkedAgainst: 'real ZooKeeper 3.8 (Debian); node layout of ElasticJob-Lite 3.x',
    example: 'type: elasticjob-zookeeper\nconnect: zk1:2181\nnamespace: order-jobs',
    options: {
      connect: 'ZooKeeper connection string.',
      namespace: "Registry-center namespace (the jobs' ZooKeeper root, without the slash).",
      jobs: 'Only these jobs. Default: every job that has this server.',
      server: 'Server name under servers/ (a template). Default {{host.address}}.',
    },
  },
  describe: (o, c) => ({
    drain: `ZooKeeper ${o.connect}: /${o.namespace}/${o.jobs ? `{${o.jobs.join(',')}}` : '<every job>'}/servers/${c.render(o.server)} = DISABLED`,
    check: `reads those nodes: all DISABLED`,
    restore: `writes back the value each node had`,
  }),
  create: (o) => new ElasticJobZookeeper(o),
};
