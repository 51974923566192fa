import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import { http, type HttpResponse } from '../../transport/http.js';
import { resolveTls, tlsOptions, type TlsSettings } from '../../transport/tls.js';
import { duration } from '../../util/duration.js';
import { secretRef } from '../../util/secrets.js';
import { httpCallSchema, prepareHttpCall, sendHttpCall, type PreparedHttpCall } from '../http-call.js';
import type { Check, Provider, ProviderContext, ProviderEnv, ProviderType } from '../types.js';

/**
 * RabbitMQ through its management HTTP API. The broker has no per-host "stop delivering" switch, so drain either
 * asks the host's app to cancel its consumers (`suspend`), or closes the host's connections (`closeConnections`:
 * forced, and most clients reconnect, so it is only a fallback). Drained = no consumer whose channel's peer host
 * is this host. Consumer lists come from management stats, refreshed every stats interval: an empty list is only
 * believed once one interval has passed since drain.
 *
 * `resume` is optional: without it the host's consumers come back only when its app restarts (typically the deploy
 * step between drain and restore), so restore does not call anything. Either way isRestored reads the broker: the
 * restore step waits (its `restoreTimeout`) until the management API lists a consumer from the host again, and
 * fails the host otherwise, so a host is never silently left without consumers (a host that had none when drained
 * is not waited for).
 */

export const rabbitmqOptions = z
  .object({
    /** Management API base, e.g. http://mq1:15672 */
    url: z.string().url(),
    username: z.union([z.string().min(1), secretRef]),
    password: secretRef,
    vhost: z.string().min(1).default('/'),
    suspend: httpCallSchema.optional(),
    /** Undoes `suspend` on restore. Optional: without it the restarted app's consumers are waited for (see above). */
    resume: httpCallSchema.optional(),
    closeConnections: z.boolean().default(false),
    /** Sent as X-Reason, shown to the client as the close reason. */
    closeReason: z.string().min(1).default('graywave: host drained for a release'),
    /** The address the broker sees for this host (behind NAT it differs from host.address). */
    peerHost: z.string().min(1).default('{{host.address}}'),
    /** How stale the management API's consumer list may be: the broker's collect_statistics_interval (and its finest
     *  sample_retention_policies step; both 5 s by default) — a new consumer can take that long to show up. */
    statsInterval: duration.default('5s'),
    timeout: duration.default('10s'),
    /** HTTPS: CA file(s), client certificate, insecureSkipVerify (src/transport/tls.ts); also for suspend/resume. */
    tls: tlsOptions.optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (!o.suspend && !o.closeConnections) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: "nothing would drain the host: set suspend (the app's endpoint) or closeConnections: true",
        path: ['suspend'],
      });
    }
  });
export type RabbitmqOptions = z.infer<typeof rabbitmqOptions>;

/** What drain returns (journal). */
export interface RabbitmqDrained {
  peerHost: string;
  suspended: boolean;
  /** Names of the connections closed (for the record; clients reconnect on their own). */
  closed: string[];
  /** Epoch ms of the drain: the consumer list is trusted from drainedAt + statsInterval on. */
  drainedAt: number;
  /** The host's consumers listed before the drain (isRestored waits for them to come back; 0: nothing to wait for). */
  consumers?: number;
}

interface Consumer {
  consumer_tag?: string;
  queue?: { name?: string };
  channel_details?: { peer_host?: string; connection_name?: string };
}
interface Connection {
  name: string;
  peer_host?: string;
}

/** The management HTTP API of one vhost, as the provider uses it (errors say what to check). */
function managementApi(options: RabbitmqOptions, env: ProviderEnv, tls: TlsSettings | undefined) {
  const user = typeof options.username === 'string' ? options.username : env.secrets.resolve(options.username);
  const authorization = 'Basic ' + Buffer.from(`${user}:${env.secrets.resolve(options.password)}`).toString('base64');
  env.secrets.add(authorization.slice(6));
  const base = options.url.replace(/\/+$/, '');
  const vhost = encodeURIComponent(options.vhost);

  async function api(ctx: ProviderContext, method: string, path: string, headers: Record<string, string> = {}): Promise<HttpResponse> {
    const res = await http(`${base}${path}`, {
      method,
      headers: { authorization, ...headers },
      timeoutMs: options.timeout,
      signal: ctx.signal,
      tls,
      log: ctx.log,
    });
    if (res.status === 401 || res.status === 403) {
      throw new ProviderError(
        `RabbitMQ management API ${base} refused ${method} ${path.split('?')[0]} (HTTP ${res.status}): check username/password and that the user has the management tag (administrator to close connections)`,
        false,
      );
    }
    return res;
  }

  async function list<T>(ctx: ProviderContext, path: string): Promise<T[]> {
    const res = await api(ctx, 'GET', path);
    if (res.status === 404) throw new ProviderError(`RabbitMQ ${base}: vhost ${options.vhost} not found (GET ${path.split('?')[0]} answered 404)`, false);
    if (res.status !== 200) throw new ProviderError(`RabbitMQ ${base}: GET ${path.split('?')[0]} answered HTTP ${res.status}: ${res.text.slice(0, 200)}`);
    const body = res.json<unknown>();
    // Newer versions answer a paged object when asked for pages; we never ask, but accept both.
    const items = Array.isArray(body) ? body : (body as { items?: unknown }).items;
    if (!Array.isArray(items)) throw new ProviderError(`RabbitMQ ${base}: GET ${path.split('?')[0]} did not answer a list`);
    return items as T[];
  }

  const consumersPath = `/api/consumers/${vhost}?columns=consumer_tag,queue.name,channel_details.peer_host,channel_details.connection_name`;
  /** The consumers whose channel's peer is `peer`. */
  const consumersOf = async (ctx: ProviderContext, peer: string) =>
    (await list<Consumer>(ctx, consumersPath)).filter((c) => c.channel_details?.peer_host === peer);
  /** The connections from `peer`. */
  const connectionsOf = async (ctx: ProviderContext, peer: string) =>
    (await list<Connection>(ctx, `/api/vhosts/${vhost}/connections?columns=name,peer_host`)).filter((c) => c.peer_host === peer);

  async function closeHostConnections(ctx: ProviderContext, peer: string): Promise<string[]> {
    const mine = await connectionsOf(ctx, peer);
    for (const c of mine) {
      const res = await api(ctx, 'DELETE', `/api/connections/${encodeURIComponent(c.name)}`, { 'x-reason': options.closeReason });
      // 404: closed meanwhile (by its client, or by an earlier attempt): that is what we wanted.
      if (res.status !== 204 && res.status !== 200 && res.status !== 404) {
        throw new ProviderError(`RabbitMQ ${base}: closing connection ${c.name} of ${ctx.host.name} answered HTTP ${res.status}: ${res.text.slice(0, 200)}`);
      }
      ctx.log(`rabbitmq: closed connection ${c.name}`);
    }
    return mine.map((c) => c.name);
  }

  return { consumersOf, connectionsOf, closeHostConnections };
}

/** `3 consumer(s) from 10.0.0.1 on orders, refunds` */
function consumersText(mine: Consumer[], peer: string): string {
  const queues = [...new Set(mine.map((c) => c.queue?.name ?? '?'))].sort();
  return `${mine.length} consumer(s) from ${peer} on ${queues.join(', ')}`;
}

export function createRabbitmqProvider(options: RabbitmqOptions, env: ProviderEnv): Provider {
  const tls = resolveTls(options.tls, env);
  const { consumersOf, connectionsOf, closeHostConnections } = managementApi(options, env, tls);
  const suspend: PreparedHttpCall | undefined = options.suspend && prepareHttpCall(options.suspend, env, tls);
  const resume: PreparedHttpCall | undefined = options.resume && prepareHttpCall(options.resume, env, tls);
  /** When this provider drained (or first polled) each host: the stats-interval wait counts from here. */
  const since = new Map<string, number>();

  return {
    async drain(ctx) {
      const peer = ctx.render(options.peerHost);
      const prev = ctx.previous as Partial<RabbitmqDrained> | undefined;
      // isRestored waits for the consumers the host has now (none: nothing to wait for); a repeated drain keeps the first count.
      const consumers = typeof prev?.consumers === 'number' ? prev.consumers : (await consumersOf(ctx, peer)).length;
      if (suspend) {
        await sendHttpCall(ctx, suspend, { what: `suspending the consumers of ${ctx.host.name}` });
        ctx.log(`rabbitmq: consumers of ${ctx.host.name} suspended through the app`);
      }
      const closed = options.closeConnections ? await closeHostConnections(ctx, peer) : [];
      const drainedAt = Date.now();
      since.set(ctx.host.name, drainedAt);
      return { peerHost: peer, suspended: !!suspend, closed, drainedAt, consumers } satisfies RabbitmqDrained;
    },

    async isDrained(ctx): Promise<Check> {
      const peer = ctx.render(options.peerHost);
      const prev = ctx.previous as Partial<RabbitmqDrained> | undefined;
      let start = since.get(ctx.host.name) ?? (typeof prev?.drainedAt === 'number' ? prev.drainedAt : undefined);
      if (start === undefined) {
        // Not drained by this process and no saved drain time: count one interval from this first poll.
        start = Date.now();
        since.set(ctx.host.name, start);
      }
      let mine: Consumer[];
      try {
        mine = await consumersOf(ctx, peer);
      } catch (err) {
        return { done: false, observed: (err as Error).message };
      }
      if (mine.length > 0) return { done: false, observed: consumersText(mine, peer) };
      const wait = start + options.statsInterval - Date.now();
      if (wait > 0)
        return { done: false, observed: `no consumer from ${peer} listed; waiting ${Math.ceil(wait / 1000)}s (one stats interval) before believing it` };
      return { done: true, observed: `no consumer from ${peer}` };
    },

    async restore(ctx, saved) {
      const s = saved as RabbitmqDrained;
      if (!s || typeof s !== 'object' || !('suspended' in s)) throw new ProviderError('rabbitmq restore: saved drain data is missing or malformed', false);
      since.delete(ctx.host.name);
      if (s.suspended && resume) {
        await sendHttpCall(ctx, resume, { what: `resuming the consumers of ${ctx.host.name}` });
        ctx.log(`rabbitmq: consumers of ${ctx.host.name} resumed through the app`);
      } else if (s.suspended) {
        ctx.log(`rabbitmq: no resume call configured: the consumers of ${ctx.host.name} come back when its app restarts (the read-back waits for them)`);
      }
      if (s.closed.length > 0) ctx.log(`rabbitmq: ${s.closed.length} closed connection(s) are for the app to re-open; nothing to undo on the broker`);
    },

    /** Serving again = the broker lists a consumer whose channel's peer is the host (when it had any at drain time). */
    async isRestored(ctx, saved): Promise<Check> {
      const s = saved as Partial<RabbitmqDrained> | undefined;
      const peer = s?.peerHost || ctx.render(options.peerHost);
      if (s?.consumers === 0) return { done: true, observed: `${peer} had no consumer when drained: nothing to wait for` };
      let mine: Consumer[];
      try {
        mine = await consumersOf(ctx, peer);
      } catch (err) {
        return { done: false, observed: `state unknown: ${(err as Error).message}` };
      }
      if (mine.length === 0) {
        const hint = s?.suspended && !resume ? ' (no resume call is configured: its consumers return only when its app restarts)' : '';
        return { done: false, observed: `no consumer from ${peer} listed on vhost ${options.vhost}${hint}` };
      }
      return { done: true, observed: consumersText(mine, peer) };
    },

    /** Preflight: the host has a connection to the broker (a host with no consumer cannot be drained here). */
    async isRegistered(ctx): Promise<Check> {
      const peer = ctx.render(options.peerHost);
      try {
        const n = (await connectionsOf(ctx, peer)).length;
        return n > 0
          ? { done: true, observed: `${n} connection(s) from ${peer}` }
          : { done: false, observed: `no connection from ${peer} on vhost ${options.vhost}` };
      } catch (err) {
        return { done: false, observed: `state unknown: ${(err as Error).message}` };
      }
    },

    async close() {
      await tls?.close();
    },
  };
}

export const rabbitmqProvider: ProviderType<RabbitmqOptions> = {
  type: 'rabbitmq',
  role: 'drain',
  options: rabbitmqOptions,
  doc: {
    summary:
      "RabbitMQ consumers: drain asks the host's app to cancel its consumers (`suspend`) or closes the host's connections; drained = the management API lists no consumer from the host.",
    checkedAgainst: 'real RabbitMQ 3.10 with the management plugin (Debian)',
    example:
      'type: rabbitmq\nurl: http://mq1:15672\nusername: graywave\npassword: { env: RABBITMQ_PASSWORD }\nsuspend: { http: "http://{{host.address}}:8080/admin/consumers/suspend", method: POST }\nresume: { http: "http://{{host.address}}:8080/admin/consumers/resume", method: POST }',
    options: {
      username: 'Management API user (a plain name or a secret reference).',
      password: 'Its password, a secret: { env: NAME } or { file: PATH }.',
      vhost: 'Virtual host whose consumers are counted.',
      closeReason: 'With closeConnections: the close reason the clients are shown (sent as X-Reason).',
      timeout: 'How long one management API request may take.',
      url: 'Management API base, e.g. http://mq1:15672.',
      suspend: "The app's endpoint that cancels its consumers.",
      resume: "Undoes suspend on restore; without it restore waits for the restarted app's consumers.",
      closeConnections: "Close the host's connections instead of (or after) suspend.",
      peerHost: 'The address the broker sees for this host (behind NAT it differs).',
      statsInterval: "How stale the consumer list may be (the broker's collect_statistics_interval).",
    },
  },
  describe: (o, c) => ({
    drain: o.suspend
      ? `${o.suspend.method ?? 'GET'} ${c.render(o.suspend.http)}`
      : `RabbitMQ ${o.url}: DELETE /api/connections/<each connection from ${c.render(o.peerHost)}>`,
    check: `GET ${o.url}/api/consumers/${encodeURIComponent(o.vhost)}: no consumer from ${c.render(o.peerHost)}`,
    restore: o.resume
      ? `${o.resume.method ?? 'GET'} ${c.render(o.resume.http)}`
      : `waits for the host's consumers to come back (the restore step's restoreTimeout)`,
  }),
  create: (options, env) => createRabbitmqProvider(options, env),
};
