import { quote } from 'shell-quote';
import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import { http } from '../../transport/http.js';
import { resolveTls, tlsOptions, type TlsSettings } from '../../transport/tls.js';
import { LocalTransport } from '../../transport/local.js';
import type { Transport } from '../../transport/types.js';
import { duration } from '../../util/duration.js';
import { httpCallSchema, prepareHttpCall, sendHttpCall } from '../http-call.js';
import type { Check, Provider, ProviderContext, ProviderEnv, ProviderType } from '../types.js';

/**
 * RocketMQ consumers. The broker has no per-host drain (queues are rebalanced among a group's clients), so drain
 * asks the host's app to stop its consumers (`suspend`: the app must shut the consumer down so that it
 * unregisters; a consumer merely paused with suspend() stays listed and keeps its queues), and the broker side is
 * only read: drained = the host's client no longer appears in the connection list of any of the groups, read with
 * `mqadmin consumerConnection` or through rocketmq-dashboard's HTTP API. Relabel does not apply (a client's group
 * is its code/config).
 */

const groups = z.array(z.string().min(1)).min(1);

const mqadminCheck = z
  .object({
    /** Path of mqadmin (…/bin/mqadmin). */
    mqadmin: z.string().min(1),
    namesrv: z.string().min(1),
    groups,
    /** Ask one broker only (-b). */
    broker: z.string().min(1).optional(),
    /** Run mqadmin on this machine (default) or on the host through the transport. */
    at: z.enum(['local', 'host']).default('local'),
    /** mqadmin starts a JVM: give it time. */
    timeout: duration.default('60s'),
  })
  .strict();

const dashboardCheck = z
  .object({
    /** rocketmq-dashboard base URL (login must be off: rocketmq.config.loginRequired=false, its default). */
    dashboard: z.string().url(),
    groups,
    /**
     * Broker addresses (ip:port) asked in turn (`address` of consumerConnection.query). Without it the dashboard is
     * asked by group alone, which most dashboard versions answer from any broker; a dashboard that needs the broker
     * answers an error, shown with a hint to set brokers (unknown state: never drained).
     */
    brokers: z.array(z.string().min(1)).min(1).optional(),
    timeout: duration.default('10s'),
  })
  .strict();

type MqadminCheck = z.infer<typeof mqadminCheck>;
type DashboardCheck = z.infer<typeof dashboardCheck>;

/** One of the two checks, chosen by its key, so that errors point at the right fields (a plain union only says "invalid input"). */
const checkSchema = z
  .object({})
  .passthrough()
  .transform((value, ctx): MqadminCheck | DashboardCheck => {
    if (!('mqadmin' in value) && !('dashboard' in value)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'check needs either mqadmin (with namesrv, groups) or dashboard (with groups)' });
      return z.NEVER;
    }
    const parsed = 'dashboard' in value ? dashboardCheck.safeParse(value) : mqadminCheck.safeParse(value);
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues) ctx.addIssue(issue as z.IssueData);
    return z.NEVER;
  });

export const rocketmqOptions = z
  .object({
    suspend: httpCallSchema,
    resume: httpCallSchema,
    check: checkSchema,
    /** The address the broker sees for this host's client (ClientAddr / the IP in ClientId). */
    clientAddress: z.string().min(1).default('{{host.address}}'),
    /** HTTPS for suspend/resume and the dashboard: CA file(s), client certificate, insecureSkipVerify (src/transport/tls.ts). */
    tls: tlsOptions.optional(),
  })
  .strict();
export type RocketmqOptions = z.infer<typeof rocketmqOptions>;

/** What drain returns (journal). */
export interface RocketmqDrained {
  suspended: true;
  clientAddress: string;
}

/** One row of a consumer group's connection list. */
export interface RocketmqClient {
  clientId: string;
  clientAddr: string;
}

/** The answer mqadmin and the dashboard give when a group has no client at all (ResponseCode CONSUMER_NOT_ONLINE). */
// Matched narrowly: a bare "206" could be part of an address (10.0.0.206) in an unrelated failure.
const NOT_ONLINE = /\bCODE:\s*206\b|consumer group\s*\[[^\]]*\]\s*not online/i;

/**
 * Parses the table `mqadmin consumerConnection` prints (`%-36s %-22s %-10s %s` under a `#ClientId #ClientAddr
 * #Language #Version` header) up to the first blank line. Columns are located by the header. Values never contain
 * spaces, so a row whose value overflowed its column width (a long ClientId) is split on whitespace instead.
 * Returns undefined when there is no header (mqadmin failed).
 */
export function parseConsumerConnection(output: string): RocketmqClient[] | undefined {
  const lines = output.split(/\r?\n/);
  const at = lines.findIndex((l) => /^#ClientId\s/.test(l));
  if (at < 0) return undefined;
  const header = lines[at]!;
  const cols = [...header.matchAll(/#(\S+)/g)].map((m) => ({ name: m[1]!, start: m.index! }));
  const idCol = cols.findIndex((c) => c.name === 'ClientId');
  const addrCol = cols.findIndex((c) => c.name === 'ClientAddr');
  if (idCol < 0 || addrCol < 0) return undefined;
  const rows: RocketmqClient[] = [];
  for (const line of lines.slice(at + 1)) {
    if (line.trim() === '') break;
    const tokens = line.trim().split(/\s+/);
    let cells: string[];
    if (tokens.length === cols.length) cells = tokens;
    else cells = cols.map((c, i) => line.slice(c.start, cols[i + 1]?.start ?? line.length).trim());
    rows.push({ clientId: cells[idCol] ?? '', clientAddr: cells[addrCol] ?? '' });
  }
  return rows;
}

/** The client is this host's: its ClientAddr's host part or the IP its ClientId starts with (`ip@instance`). */
export function isHostClient(c: RocketmqClient, address: string): boolean {
  const host = c.clientAddr.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  return host === address || c.clientId.split('@')[0] === address;
}

/** The clients of one group, or a reason why they are unknown. */
type Listing = { clients: RocketmqClient[] } | { unknown: string };

/** `mqadmin consumerConnection` for one group, run on the host or here (`local`). */
async function viaMqadmin(ctx: ProviderContext, c: MqadminCheck, group: string, local: Transport): Promise<Listing> {
  const args = [c.mqadmin, 'consumerConnection', '-n', c.namesrv, '-g', group, ...(c.broker ? ['-b', c.broker] : [])];
  const transport = c.at === 'host' ? ctx.transport : local;
  const res = await transport.exec(ctx.host, quote(args), { timeoutMs: c.timeout, signal: ctx.signal });
  const out = `${res.stdout}\n${res.stderr}`;
  const rows = parseConsumerConnection(res.stdout);
  if (rows && res.code === 0) return { clients: rows };
  // mqadmin prints the broker's error instead of an empty table when the group has no client.
  if (NOT_ONLINE.test(out)) return { clients: [] };
  const last = out.trim().split(/\r?\n/).filter(Boolean).slice(-1)[0] ?? '';
  const why = res.timedOut ? `timed out after ${c.timeout} ms` : `exit ${res.code ?? res.signal}`;
  return { unknown: `mqadmin consumerConnection -g ${group} (${c.at === 'host' ? `on ${ctx.host.name}` : 'local'}): ${why}: ${last.slice(0, 200)}` };
}

/** rocketmq-dashboard's consumerConnection.query for one group (per broker when `brokers` is given). */
async function viaDashboard(ctx: ProviderContext, c: DashboardCheck, group: string, tls: TlsSettings | undefined): Promise<Listing> {
  const base = c.dashboard.replace(/\/+$/, '');
  const clients: RocketmqClient[] = [];
  // No brokers given: one question per group, without `address`.
  for (const broker of c.brokers ?? [undefined]) {
    const q = new URLSearchParams({ consumerGroup: group, ...(broker !== undefined ? { address: broker } : {}) });
    const at = broker !== undefined ? ` at ${broker}` : '';
    const hint = broker === undefined ? ' (a dashboard that needs the broker address: set check.brokers)' : '';
    const res = await http(`${base}/consumer/consumerConnection.query?${q}`, { timeoutMs: c.timeout, signal: ctx.signal, tls, log: ctx.log });
    if (res.status !== 200) return { unknown: `dashboard ${base}: consumerConnection of ${group}${at} answered HTTP ${res.status}${hint}` };
    let body: { status?: number; data?: { connectionSet?: RocketmqClient[] }; errMsg?: string | null };
    try {
      body = res.json();
    } catch (err) {
      return { unknown: (err as Error).message };
    }
    if (body.status !== 0) {
      if (NOT_ONLINE.test(body.errMsg ?? '')) continue;
      return { unknown: `dashboard ${base}: consumerConnection of ${group}${at}: status ${body.status}: ${String(body.errMsg ?? '').slice(0, 200)}${hint}` };
    }
    const set = body.data?.connectionSet;
    if (!Array.isArray(set)) return { unknown: `dashboard ${base}: consumerConnection of ${group}${at}: no connectionSet in the answer` };
    clients.push(...set.map((s) => ({ clientId: String(s.clientId ?? ''), clientAddr: String(s.clientAddr ?? '') })));
  }
  return { clients };
}

/** Per group: the groups the host's client is connected to (with its client ids) and those it is not, or why unknown. */
async function connectedGroups(
  groups: string[],
  list: (group: string) => Promise<Listing>,
  address: string,
): Promise<{ in: string[]; out: string[] } | { unknown: string }> {
  const inGroups: string[] = [];
  const out: string[] = [];
  for (const group of groups) {
    let listing: Listing;
    try {
      listing = await list(group);
    } catch (err) {
      return { unknown: (err as Error).message };
    }
    if ('unknown' in listing) return listing;
    const mine = listing.clients.filter((c) => isHostClient(c, address));
    if (mine.length > 0) inGroups.push(`${group} (${mine.map((m) => m.clientId).join(', ')})`);
    else out.push(group);
  }
  return { in: inGroups, out };
}

export function createRocketmqProvider(options: RocketmqOptions, env: ProviderEnv): Provider {
  const tls = resolveTls(options.tls, env);
  const suspend = prepareHttpCall(options.suspend, env, tls);
  const resume = prepareHttpCall(options.resume, env, tls);
  const check = options.check;
  const local: Transport = new LocalTransport(env.dir);
  const connected = (ctx: ProviderContext, address: string) =>
    connectedGroups(check.groups, (group) => ('mqadmin' in check ? viaMqadmin(ctx, check, group, local) : viaDashboard(ctx, check, group, tls)), address);

  return {
    async drain(ctx) {
      await sendHttpCall(ctx, suspend, { what: `stopping the RocketMQ consumers of ${ctx.host.name}` });
      ctx.log(`rocketmq: consumers of ${ctx.host.name} stopped through the app`);
      return { suspended: true, clientAddress: ctx.render(options.clientAddress) } satisfies RocketmqDrained;
    },

    async isDrained(ctx): Promise<Check> {
      const address = ctx.render(options.clientAddress);
      const r = await connected(ctx, address);
      if ('unknown' in r) return { done: false, observed: r.unknown };
      if (r.in.length > 0) return { done: false, observed: `${address} still connected to ${r.in.join('; ')}` };
      return { done: true, observed: `${address} not connected to ${check.groups.join(', ')}` };
    },

    /** Serving again: the host's client is listed in every group's consumer connections. */
    async isRestored(ctx, saved): Promise<Check> {
      const s = saved as Partial<RocketmqDrained> | undefined;
      const address = s?.clientAddress || ctx.render(options.clientAddress);
      const r = await connected(ctx, address);
      if ('unknown' in r) return { done: false, observed: `state unknown: ${r.unknown}` };
      if (r.out.length > 0)
        return { done: false, observed: `${address} not connected to ${r.out.join(', ')}${r.in.length ? ` (connected to ${r.in.join('; ')})` : ''}` };
      return { done: true, observed: `${address} connected to ${r.in.join('; ')}` };
    },

    /** Preflight: the host's client is a consumer of every group (what drain will take out). */
    async isRegistered(ctx): Promise<Check> {
      const address = ctx.render(options.clientAddress);
      const r = await connected(ctx, address);
      if ('unknown' in r) return { done: false, observed: `state unknown: ${r.unknown}` };
      if (r.out.length > 0) return { done: false, observed: `${address} is not a consumer of ${r.out.join(', ')}` };
      return { done: true, observed: `${address} consumes ${check.groups.join(', ')}` };
    },

    async restore(ctx, saved) {
      const s = saved as RocketmqDrained;
      if (!s || typeof s !== 'object' || s.suspended !== true) throw new ProviderError('rocketmq restore: saved drain data is missing or malformed', false);
      await sendHttpCall(ctx, resume, { what: `starting the RocketMQ consumers of ${ctx.host.name} again` });
      ctx.log(`rocketmq: consumers of ${ctx.host.name} started again through the app`);
    },

    async close() {
      await tls?.close();
    },
  };
}

export const rocketmqProvider: ProviderType<RocketmqOptions> = {
  type: 'rocketmq',
  role: 'drain',
  options: rocketmqOptions,
  doc: {
    summary:
      "RocketMQ consumers: drain asks the host's app to suspend its consumers; drained = the host's client is gone from every listed consumer group (mqadmin consumerConnection, or rocketmq-dashboard).",
    checkedAgainst: 'a local server and an mqadmin stand-in answering the recorded RocketMQ 4.9/5.x shapes (RocketMQ does not install here)',
    example:
      'type: rocketmq\nsuspend: { http: "http://{{host.address}}:8080/admin/mq/suspend", method: POST }\nresume: { http: "http://{{host.address}}:8080/admin/mq/resume", method: POST }\ncheck: { mqadmin: /opt/rocketmq/bin/mqadmin, namesrv: "ns1:9876", groups: [order_consumer] }',
    options: {
      suspend: "The app's endpoint that suspends its consumers.",
      resume: "The app's endpoint that resumes them.",
      check: '`{ mqadmin, namesrv, groups }` (mqadmin consumerConnection) or `{ dashboard, groups }` (rocketmq-dashboard HTTP API).',
      clientAddress: "The address the broker sees for this host's client.",
    },
  },
  describe: (o, c) => ({
    drain: `${o.suspend.method ?? 'GET'} ${c.render(o.suspend.http)}`,
    check:
      'mqadmin' in o.check
        ? `mqadmin consumerConnection -n ${o.check.namesrv} -g ${o.check.groups.join(',')}: no client at ${c.render(o.clientAddress)}`
        : `GET ${o.check.dashboard}/consumer/consumerConnection.query?consumerGroup=${o.check.groups.join(',')}: no client at ${c.render(o.clientAddress)}`,
    restore: `${o.resume.method ?? 'GET'} ${c.render(o.resume.http)}`,
  }),
  create: (options, env) => createRocketmqProvider(options, env),
};
