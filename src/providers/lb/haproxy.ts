/**
 * `type: haproxy` — drain a host from an HAProxy backend through the runtime API (stats socket, `level admin`).
 *
 *   hap:
 *     type: haproxy
 *     at: [local]                       # or addresses reached with the playbook's transport (uses socat there)
 *     socket: /run/haproxy/admin.sock   # or tcp:127.0.0.1:9999
 *     backend: order_backend
 *     server: "{{host.name}}"
 *
 * drain: `set server B/S state drain` (new non-sticky traffic stops, sessions in flight finish). isDrained polls
 * `show stat` until the server's `scur` and `qcur` are 0 while it is in drain or maintenance, then puts a server this
 * provider drained into `maint` (no sticky newcomers either). restore: `state ready`, only where drain changed the
 * state: a server an operator had already put in drain or maint is left as it was. isRestored: no drain/maint bit,
 * health status UP (or no check), weight > 0. Weights change only in a warm-up (`restore: {warmup}`): then
 * `set server B/S weight N` ramps to the weight the server had when drained, which restore puts back.
 *
 * Runtime API changes are lost when HAProxy reloads or restarts unless `server-state-file` is configured; with
 * several HAProxy nodes list them all in `at` (all are changed, or none).
 */
import net from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { quote } from 'shell-quote';
import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import { duration } from '../../util/duration.js';
import type { Check, Provider, ProviderContext, ProviderEnv, ProviderType } from '../types.js';
import { allOrNone, atOption, places, run, why, type Place } from './at.js';

const options = z
  .object({
    at: atOption,
    socket: z.string().min(1),
    backend: z.string().min(1),
    server: z.string().min(1),
    /** Limit for one runtime API command. */
    timeout: duration.default('10s'),
  })
  .strict();
type Options = z.infer<typeof options>;

interface Saved {
  backend: string;
  server: string;
  /** `at` entries where drain changed the server's state. */
  added: string[];
  /** The server's weight (srv_uweight) per `at` entry when drained: warm-up ramps towards it, restore puts it back. */
  weights?: Record<string, number>;
}

function isSaved(v: unknown): v is Saved {
  const s = v as Saved;
  return !!s && typeof s === 'object' && typeof s.server === 'string' && Array.isArray(s.added) && s.added.every((a) => typeof a === 'string');
}

/** srv_admin_state bits (management guide, "show servers state"). */
const FORCED_MAINT = 0x01;
const FORCED_DRAIN = 0x08;
const ANY_OUT = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20; // forced/inherited/config maint, forced/inherited drain, DNS maint

/** Parses `show stat` CSV by its header names (`# pxname,svname,qcur,…`). */
export function parseStat(text: string): Record<string, string>[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines.findIndex((l) => l.startsWith('# '));
  if (header < 0) throw new Error(`no CSV header in the answer: ${text.slice(0, 200)}`);
  const names = lines[header]!.slice(2).split(',');
  return lines.slice(header + 1).map((l) => {
    const cells = l.split(',');
    return Object.fromEntries(names.map((n, i) => [n, cells[i] ?? '']));
  });
}

/** Parses `show servers state` (version line, `# `-header with space-separated names, then rows). */
export function parseServersState(text: string): Record<string, string>[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines.findIndex((l) => l.startsWith('# '));
  if (header < 0) throw new Error(text.trim().slice(0, 200) || 'empty answer');
  const names = lines[header]!.slice(2).trim().split(/\s+/);
  return lines.slice(header + 1).map((l) => {
    const cells = l.trim().split(/\s+/);
    return Object.fromEntries(names.map((n, i) => [n, cells[i] ?? '']));
  });
}

class HaproxyProvider implements Provider {
  private readonly places: Place[];
  /** `label\0backend/server` this process drained: only those get `maint` from isDrained. */
  private readonly ours = new Set<string>();

  constructor(
    private readonly o: Options,
    private readonly env: ProviderEnv,
  ) {
    this.places = places(o.at, env);
    const tcp = o.socket.startsWith('tcp:');
    if (tcp && !/^tcp:[^:]+:\d+$/.test(o.socket)) throw new Error(`socket ${o.socket}: write tcp:HOST:PORT`);
    if (!tcp && !isAbsolute(o.socket) && o.at.some((a) => a !== 'local')) {
      throw new Error(`socket ${o.socket} must be an absolute path when HAProxy runs on other machines (at: ${o.at.join(', ')})`);
    }
  }

  private where(p: Place, ctx: ProviderContext): string {
    return `HAProxy on ${p.label} (socket ${this.o.socket}, host ${ctx.host.name})`;
  }

  /** One runtime API command; the answer as text. Throws a ProviderError when the socket cannot be used. */
  private async send(p: Place, ctx: ProviderContext, command: string): Promise<string> {
    const tcp = /^tcp:([^:]+):(\d+)$/.exec(this.o.socket);
    if (!p.local) {
      const addr = tcp ? `tcp:${tcp[1]}:${tcp[2]}` : `unix-connect:${this.o.socket}`;
      const seconds = Math.max(1, Math.ceil(this.o.timeout / 1000));
      const res = await run(p, `socat -t ${seconds} stdio ${quote([addr])}`, { input: `${command}\n`, timeoutMs: this.o.timeout + 2000, signal: ctx.signal });
      if (res.code !== 0)
        throw new ProviderError(`${this.where(p, ctx)}: \`${command}\` through socat failed (${why(res)}); is socat installed there and HAProxy running?`);
      return res.stdout;
    }
    const target = tcp ? { host: tcp[1]!, port: Number(tcp[2]) } : { path: isAbsolute(this.o.socket) ? this.o.socket : resolve(this.env.dir, this.o.socket) };
    return new Promise<string>((ok, fail) => {
      const s = net.connect(target);
      let out = '';
      const done = (err?: Error) => {
        clearTimeout(timer);
        ctx.signal.removeEventListener('abort', onAbort);
        s.destroy();
        if (err) fail(new ProviderError(`${this.where(p, ctx)}: \`${command}\`: ${err.message}`));
        else ok(out);
      };
      const timer = setTimeout(() => done(new Error(`no answer within ${this.o.timeout} ms`)), this.o.timeout);
      const onAbort = () => done(new Error('aborted'));
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      s.setEncoding('utf8');
      s.on('connect', () => s.write(`${command}\n`));
      s.on('data', (c: string) => (out += c));
      // Non-interactive mode: HAProxy answers one command and closes the connection.
      s.on('end', () => done());
      s.on('error', (e: NodeJS.ErrnoException) =>
        done(new Error(e.code === 'EACCES' ? `${e.message} (run graywave as a user that may open the socket)` : e.message)),
      );
    });
  }

  /** A `set …` command: HAProxy answers an empty line on success, a message otherwise. */
  private async set(p: Place, ctx: ProviderContext, server: string, state: 'drain' | 'maint' | 'ready'): Promise<void> {
    const command = `set server ${this.o.backend}/${server} state ${state}`;
    const answer = (await this.send(p, ctx, command)).trim();
    if (answer !== '') {
      const hint = /permission denied/i.test(answer)
        ? 'the stats socket needs `level admin`'
        : /no such/i.test(answer)
          ? `check backend ${this.o.backend} and server ${server} (server names, not addresses)`
          : 'see the HAProxy log';
      throw new ProviderError(`${this.where(p, ctx)}: \`${command}\` answered "${answer}": ${hint}`, !/permission denied|no such/i.test(answer));
    }
    ctx.log(`${this.where(p, ctx)}: ${command}`);
  }

  private async adminState(p: Place, ctx: ProviderContext, server: string): Promise<number> {
    return (await this.serverState(p, ctx, server)).admin;
  }

  private async serverState(p: Place, ctx: ProviderContext, server: string): Promise<{ admin: number; weight: number }> {
    const text = await this.send(p, ctx, `show servers state ${this.o.backend}`);
    let rows;
    try {
      rows = parseServersState(text);
    } catch (err) {
      throw new ProviderError(`${this.where(p, ctx)}: \`show servers state ${this.o.backend}\`: ${(err as Error).message}`, !/can't find/i.test(text));
    }
    const row = rows.find((r) => r.be_name === this.o.backend && r.srv_name === server);
    if (!row) {
      const have = rows.map((r) => r.srv_name).join(', ');
      throw new ProviderError(`${this.where(p, ctx)}: no server ${server} in backend ${this.o.backend} (servers: ${have || 'none'})`, false);
    }
    const v = Number(row.srv_admin_state);
    if (!Number.isInteger(v)) throw new ProviderError(`${this.where(p, ctx)}: unreadable srv_admin_state "${row.srv_admin_state}"`);
    return { admin: v, weight: Number(row.srv_uweight) };
  }

  /** `set server B/S weight N` (an absolute weight, 0–256). */
  private async setWeightAt(p: Place, ctx: ProviderContext, server: string, weight: number): Promise<void> {
    const command = `set server ${this.o.backend}/${server} weight ${weight}`;
    const answer = (await this.send(p, ctx, command)).trim();
    // Success is an empty answer (older versions print nothing either way; newer may warn about static algorithms).
    if (answer !== '')
      throw new ProviderError(
        `${this.where(p, ctx)}: \`${command}\` answered "${answer}"${/static/i.test(answer) ? ': a static balance algorithm takes only 0 or 100%, so warm-up cannot be used with it' : ''}`,
        false,
      );
    ctx.log(`${this.where(p, ctx)}: ${command}`);
  }

  private async sessions(p: Place, ctx: ProviderContext, server: string): Promise<{ scur: number; qcur: number; status: string; weight: number }> {
    const text = await this.send(p, ctx, 'show stat');
    let rows;
    try {
      rows = parseStat(text);
    } catch (err) {
      throw new ProviderError(`${this.where(p, ctx)}: \`show stat\`: ${(err as Error).message}`);
    }
    const row = rows.find((r) => r.pxname === this.o.backend && r.svname === server);
    if (!row) throw new ProviderError(`${this.where(p, ctx)}: \`show stat\` has no row ${this.o.backend}/${server}`, false);
    const scur = row.scur === '' ? NaN : Number(row.scur);
    const qcur = row.qcur === '' ? NaN : Number(row.qcur);
    if (!Number.isFinite(scur) || !Number.isFinite(qcur)) throw new ProviderError(`${this.where(p, ctx)}: unreadable scur "${row.scur}" / qcur "${row.qcur}"`);
    return { scur, qcur, status: row.status ?? '', weight: Number(row.weight) };
  }

  private key(p: Place, server: string): string {
    return `${p.label}\0${this.o.backend}/${server}`;
  }

  async drain(ctx: ProviderContext): Promise<Saved> {
    const server = ctx.render(this.o.server);
    // A drain interrupted after it set the state: the server is out now, but this drain put it there.
    const earlier = isSaved(ctx.previous) && ctx.previous.server === server && ctx.previous.backend === this.o.backend ? ctx.previous.added : [];
    const weights: Record<string, number> = isSaved(ctx.previous) && ctx.previous.weights ? { ...ctx.previous.weights } : {};
    const done = await allOrNone(
      this.places,
      async (p) => {
        const { admin, weight } = await this.serverState(p, ctx, server);
        if (Number.isFinite(weight) && !(p.label in weights)) weights[p.label] = weight;
        if (admin & (FORCED_MAINT | FORCED_DRAIN)) {
          ctx.log(`${this.where(p, ctx)}: ${this.o.backend}/${server} is already in ${admin & FORCED_MAINT ? 'maint' : 'drain'}`);
          return false;
        }
        await this.set(p, ctx, server, 'drain');
        return true;
      },
      async (p, changed) => {
        if (changed) await this.set(p, ctx, server, 'ready');
      },
    );
    const added = done.filter((d) => d.result || earlier.includes(d.place.label)).map((d) => d.place.label);
    for (const label of added) this.ours.add(`${label}\0${this.o.backend}/${server}`);
    return { backend: this.o.backend, server, added, weights };
  }

  async isDrained(ctx: ProviderContext): Promise<Check> {
    const server = ctx.render(this.o.server);
    const seen: string[] = [];
    for (const p of this.places) {
      try {
        const admin = await this.adminState(p, ctx, server);
        if (!(admin & ANY_OUT)) return { done: false, observed: `${this.o.backend}/${server} on ${p.label} is not in drain or maint` };
        let s = await this.sessions(p, ctx, server);
        if (s.scur > 0 || s.qcur > 0) return { done: false, observed: `${this.o.backend}/${server} on ${p.label}: ${s.scur} sessions, ${s.qcur} queued` };
        if (this.ours.has(this.key(p, server)) && !(admin & FORCED_MAINT)) {
          // Drained to zero: maint also stops sticky newcomers that drain still lets in. Then read again.
          await this.set(p, ctx, server, 'maint');
          s = await this.sessions(p, ctx, server);
          if (s.scur > 0 || s.qcur > 0)
            return { done: false, observed: `${this.o.backend}/${server} on ${p.label}: ${s.scur} sessions, ${s.qcur} queued (in maint)` };
        }
        seen.push(`${p.label}: ${s.status}, 0 sessions`);
      } catch (err) {
        return { done: false, observed: (err as Error).message };
      }
    }
    return { done: true, observed: `${this.o.backend}/${server} ${seen.join('; ')}` };
  }

  async restore(ctx: ProviderContext, saved: unknown): Promise<void> {
    if (!isSaved(saved)) throw new ProviderError(`HAProxy restore for host ${ctx.host.name}: the journal entry of the drain is not readable`, false);
    const errors: string[] = [];
    // Every place is tried even when one fails, then the step fails naming each failure.
    for (const p of this.places.filter((pl) => saved.added.includes(pl.label))) {
      try {
        // A warm-up changed the weight: put back the one the server had (absolute, as `show servers state` read it).
        const had = saved.weights?.[p.label];
        if (had !== undefined && Number.isFinite(had)) {
          const now = await this.serverState(p, ctx, saved.server);
          if (now.weight !== had) await this.setWeightAt(p, ctx, saved.server, had);
        }
        await this.set(p, ctx, saved.server, 'ready');
        this.ours.delete(this.key(p, saved.server));
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    if (errors.length > 0) throw new ProviderError(errors.join('\n'));
  }

  /** Warm-up: at every place drain changed, weight = `percent` of the saved weight (at least 1), state ready. */
  async setWeight(ctx: ProviderContext, saved: unknown, percent: number): Promise<void> {
    if (!isSaved(saved)) throw new ProviderError(`HAProxy warm-up for host ${ctx.host.name}: the journal entry of the drain is not readable`, false);
    for (const p of this.places.filter((pl) => saved.added.includes(pl.label))) {
      const had = saved.weights?.[p.label];
      if (had === undefined || !Number.isFinite(had))
        throw new ProviderError(`${this.where(p, ctx)}: the drain did not record the server's weight (an older journal): cannot warm it up`, false);
      await this.setWeightAt(p, ctx, saved.server, Math.max(had > 0 ? 1 : 0, Math.round((had * percent) / 100)));
      await this.set(p, ctx, saved.server, 'ready');
    }
  }

  /** Serving again: at every place drain changed, no drain/maint bit, `show stat` status UP (or "no check"), weight > 0. */
  async isRestored(ctx: ProviderContext, saved: unknown): Promise<Check> {
    if (!isSaved(saved)) return { done: false, observed: 'the journal entry of the drain is not readable' };
    const seen: string[] = [];
    for (const p of this.places.filter((pl) => saved.added.includes(pl.label))) {
      try {
        const { admin } = await this.serverState(p, ctx, saved.server);
        if (admin & ANY_OUT)
          return {
            done: false,
            observed: `${this.o.backend}/${saved.server} on ${p.label} is still in ${admin & (FORCED_MAINT | 0x02 | 0x04 | 0x20) ? 'maint' : 'drain'}`,
          };
        const s = await this.sessions(p, ctx, saved.server);
        if (!/^(UP|no check)/.test(s.status))
          return { done: false, observed: `${this.o.backend}/${saved.server} on ${p.label} is ${s.status || 'in an unknown state'} (health check)` };
        if (!(s.weight > 0)) return { done: false, observed: `${this.o.backend}/${saved.server} on ${p.label} has weight ${s.weight}` };
        seen.push(`${p.label}: ${s.status}, weight ${s.weight}`);
      } catch (err) {
        return { done: false, observed: `state unknown: ${(err as Error).message}` };
      }
    }
    return {
      done: true,
      observed: seen.length ? `${this.o.backend}/${saved.server} ${seen.join('; ')}` : `drain changed nothing here (already out before): left as it was`,
    };
  }

  async isRegistered(ctx: ProviderContext): Promise<Check> {
    const server = ctx.render(this.o.server);
    const seen: string[] = [];
    for (const p of this.places) {
      try {
        await this.serverState(p, ctx, server);
        seen.push(p.label);
      } catch (err) {
        return { done: false, observed: (err as Error).message };
      }
    }
    return { done: true, observed: `${this.o.backend}/${server} on ${seen.join(', ')}` };
  }
}

export const haproxyProvider: ProviderType<Options> = {
  type: 'haproxy',
  role: 'drain',
  options,
  doc: {
    summary:
      'HAProxy through its runtime API: drain sets the server to `drain` (no new traffic), then to `maint` once its sessions reach 0; restore puts back the state it had.',
    checkedAgainst: 'real HAProxy 2.6 (Debian)',
    example: 'type: haproxy\nat: [local]\nsocket: /run/haproxy/admin.sock\nbackend: order\nserver: "{{host.name}}"',
    options: {
      timeout: 'How long one Runtime API command may take.',
      at: 'Where HAProxy runs: `local` or addresses reached through the transport.',
      socket: 'The runtime API socket (stats socket … level admin).',
      backend: 'Backend name.',
      server: 'Server name in the backend (a template).',
    },
  },
  describe: (o, c) => ({
    drain: `at ${o.at.join(', ')}: ${o.socket}: set server ${o.backend}/${c.render(o.server)} state drain`,
    check: `show stat: ${o.backend}/${c.render(o.server)} scur = 0 and qcur = 0, then state maint`,
    restore: `set server ${o.backend}/${c.render(o.server)} state ready (the state it had)`,
  }),
  create: (o, env) => new HaproxyProvider(o, env),
};
