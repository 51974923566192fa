/**
 * `type: f5` — drain a host from an F5 BIG-IP LTM pool through iControl REST.
 *
 *   bigip:
 *     type: f5
 *     url: https://bigip.example.com
 *     partition: Common               # default
 *     pool: order_pool
 *     member: "{{host.address}}:8080" # the member's name in the pool (route domain as 10.0.0.5%2:8080)
 *     mode: disable                   # disable: session user-disabled (persistent/active connections only)
 *                                     # offline: also state user-down (no new connections at all)
 *     username: { env: F5_USER }
 *     password: { env: F5_PASSWORD }
 *     syncGroup: dg-ha                # optional: `config-sync to-group` after each change (HA pair without auto-sync)
 *     tls: { ca: ./certs/bigip-ca.pem } # a BIG-IP with a self-signed certificate: trust it (src/transport/tls.ts)
 *
 * Login is token based (POST /mgmt/shared/authn/login, then X-F5-Auth-Token); the token is renewed before it
 * expires and once on a 401. drain reads the member first and PATCHes only the fields not already in the drained
 * value; restore sets exactly those fields back to enabled (`user-enabled` / `user-up`), so a member an operator had
 * disabled stays disabled. isDrained: the member reads back disabled (and user-down for offline) and
 * `serverside.curConns` in its /stats is 0; no stats entry is "unknown", never drained.
 */
import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import { http, type HttpResponse } from '../../transport/http.js';
import { resolveTls, tlsOptions, type TlsSettings } from '../../transport/tls.js';
import { duration } from '../../util/duration.js';
import { secretRef } from '../../util/secrets.js';
import type { Check, Provider, ProviderContext, ProviderEnv, ProviderType } from '../types.js';

const name = z
  .string()
  .min(1)
  .regex(/^[^/~?#\s]+$/, 'a plain F5 object name (no / ~ ? # or spaces)');

const options = z
  .object({
    url: z
      .string()
      .url()
      .regex(/^https?:\/\//, 'an http(s) URL'),
    partition: name.default('Common'),
    pool: name,
    member: z.string().min(1),
    mode: z.enum(['disable', 'offline']).default('disable'),
    username: secretRef,
    password: secretRef,
    loginProvider: z.string().min(1).default('tmos'),
    syncGroup: z.string().min(1).optional(),
    timeout: duration.default('10s'),
    tls: tlsOptions.optional(),
  })
  .strict();
type Options = z.infer<typeof options>;

interface Saved {
  member: string;
  /** The fields drain changed: only these are set back. */
  session: boolean;
  state: boolean;
}

function isSaved(v: unknown): v is Saved {
  const s = v as Saved;
  return !!s && typeof s === 'object' && typeof s.member === 'string' && typeof s.session === 'boolean' && typeof s.state === 'boolean';
}

interface Member {
  name?: string;
  session?: string;
  state?: string;
}

/** `~Common~10.0.0.5%2:8080` → URL path segment; `%` (route domain) must travel as `%25`. */
function memberSegment(partition: string, member: string): string {
  return `~${partition}~${member}`
    .split('')
    .map((c) => (/[A-Za-z0-9~:._-]/.test(c) ? c : encodeURIComponent(c)))
    .join('');
}

/** Every `serverside.curConns` value in a stats answer (the outer keys are self links: iterate, don't build them). */
function curConns(stats: unknown): number[] {
  const out: number[] = [];
  const entries = (stats as { entries?: Record<string, unknown> })?.entries;
  if (!entries || typeof entries !== 'object') return out;
  for (const e of Object.values(entries)) {
    const nested = (e as { nestedStats?: { entries?: Record<string, { value?: unknown }> } })?.nestedStats?.entries;
    const v = nested?.['serverside.curConns']?.value;
    if (typeof v === 'number' && Number.isFinite(v)) out.push(v);
  }
  return out;
}

class F5Provider implements Provider {
  private readonly base: string;
  private token?: { value: string; renewAt: number };
  private login?: Promise<string>;

  constructor(
    private readonly o: Options,
    private readonly env: ProviderEnv,
    private readonly username: string,
    private readonly password: string,
    private readonly tls: TlsSettings | undefined,
  ) {
    this.base = o.url.replace(/\/+$/, '');
  }

  private pool(): string {
    return `/${this.o.partition}/${this.o.pool}`;
  }

  private memberPath(member: string): string {
    return `/mgmt/tm/ltm/pool/~${this.o.partition}~${this.o.pool}/members/${memberSegment(this.o.partition, member)}`;
  }

  private async authenticate(ctx: ProviderContext): Promise<string> {
    const res = await http(`${this.base}/mgmt/shared/authn/login`, {
      method: 'POST',
      body: { username: this.username, password: this.password, loginProviderName: this.o.loginProvider },
      timeoutMs: this.o.timeout,
      signal: ctx.signal,
      tls: this.tls,
      log: ctx.log,
    });
    if (res.status !== 200) {
      throw new ProviderError(
        `F5 ${this.base}: login failed (HTTP ${res.status}${this.f5Message(res)}); check the username/password secrets and loginProvider`,
        res.status >= 500,
      );
    }
    const body = res.json<{ token?: { token?: string; expirationMicros?: number; timeout?: number } }>();
    const token = body.token?.token;
    if (!token) throw new ProviderError(`F5 ${this.base}: login answer has no token.token`);
    this.env.secrets.add(token);
    const expires = body.token?.expirationMicros ? body.token.expirationMicros / 1000 : Date.now() + (body.token?.timeout ?? 1200) * 1000;
    // Renew a minute early (or halfway for short-lived tokens) so that no call races the expiry.
    this.token = { value: token, renewAt: expires - Math.min(60_000, (expires - Date.now()) / 2) };
    return token;
  }

  private async getToken(ctx: ProviderContext, fresh = false): Promise<string> {
    if (!fresh && this.token && Date.now() < this.token.renewAt) return this.token.value;
    // Hosts of a wave call concurrently: one login serves them all.
    this.login ??= this.authenticate(ctx).finally(() => (this.login = undefined));
    return this.login;
  }

  private f5Message(res: HttpResponse): string {
    try {
      const m = (JSON.parse(res.text) as { message?: unknown }).message;
      return typeof m === 'string' ? `: ${this.env.secrets.mask(m)}` : '';
    } catch {
      return '';
    }
  }

  private async call(ctx: ProviderContext, method: string, path: string, body?: object): Promise<HttpResponse> {
    let token = await this.getToken(ctx);
    for (let attempt = 0; ; attempt++) {
      const res = await http(`${this.base}${path}`, {
        method,
        body,
        headers: { 'X-F5-Auth-Token': token },
        timeoutMs: this.o.timeout,
        signal: ctx.signal,
        tls: this.tls,
        log: ctx.log,
      });
      if (res.status === 401 && attempt === 0) {
        token = await this.getToken(ctx, true); // expired or revoked: log in again once
        continue;
      }
      return res;
    }
  }

  private fail(ctx: ProviderContext, what: string, res: HttpResponse, member: string): never {
    if (res.status === 404) {
      throw new ProviderError(
        `F5 ${this.base}, host ${ctx.host.name}: ${what}: pool member ${member} not found in pool ${this.pool()}${this.f5Message(res)}; check pool, partition and member (the member's name, usually ADDRESS:PORT)`,
        false,
      );
    }
    throw new ProviderError(
      `F5 ${this.base}, host ${ctx.host.name}: ${what} failed (HTTP ${res.status}${this.f5Message(res)})`,
      res.status >= 500 || res.status === 401 || res.status === 429,
    );
  }

  private async read(ctx: ProviderContext, member: string): Promise<Member> {
    const res = await this.call(ctx, 'GET', this.memberPath(member));
    if (res.status !== 200) this.fail(ctx, `reading pool member ${member}`, res, member);
    return res.json<Member>();
  }

  private async patch(ctx: ProviderContext, member: string, body: Member): Promise<void> {
    const res = await this.call(ctx, 'PATCH', this.memberPath(member), body);
    if (res.status !== 200) this.fail(ctx, `setting pool member ${member} to ${JSON.stringify(body)}`, res, member);
    ctx.log(`F5 ${this.base}: pool ${this.pool()} member ${member}: ${JSON.stringify(body)}`);
    if (this.o.syncGroup) {
      const sync = await this.call(ctx, 'POST', '/mgmt/tm/cm', { command: 'run', utilCmdArgs: `config-sync to-group ${this.o.syncGroup}` });
      if (sync.status !== 200) this.fail(ctx, `config-sync to-group ${this.o.syncGroup}`, sync, member);
    }
  }

  async drain(ctx: ProviderContext): Promise<Saved> {
    const member = ctx.render(this.o.member);
    const now = await this.read(ctx, member);
    const body: Member = {};
    if (now.session !== 'user-disabled') body.session = 'user-disabled';
    if (this.o.mode === 'offline' && now.state !== 'user-down') body.state = 'user-down';
    if (Object.keys(body).length > 0) await this.patch(ctx, member, body);
    else ctx.log(`F5 ${this.base}: pool ${this.pool()} member ${member} is already ${this.o.mode === 'offline' ? 'forced offline' : 'disabled'}`);
    // A drain interrupted after its PATCH finds the member already drained: the earlier attempt still owns the change.
    const prev = isSaved(ctx.previous) && ctx.previous.member === member ? ctx.previous : undefined;
    return { member, session: 'session' in body || !!prev?.session, state: 'state' in body || !!prev?.state };
  }

  async isDrained(ctx: ProviderContext): Promise<Check> {
    const member = ctx.render(this.o.member);
    try {
      const m = await this.read(ctx, member);
      if (m.session !== 'user-disabled') return { done: false, observed: `member ${member} session is ${m.session ?? 'missing'}, not user-disabled` };
      if (this.o.mode === 'offline' && m.state !== 'user-down')
        return { done: false, observed: `member ${member} state is ${m.state ?? 'missing'}, not user-down` };
      const res = await this.call(ctx, 'GET', `${this.memberPath(member)}/stats`);
      if (res.status !== 200) this.fail(ctx, `reading stats of pool member ${member}`, res, member);
      const conns = curConns(res.json());
      if (conns.length === 0) return { done: false, observed: `no serverside.curConns in the stats of member ${member}` };
      const total = conns.reduce((a, b) => a + b, 0);
      if (total > 0) return { done: false, observed: `member ${member}: ${total} server-side connections` };
      return { done: true, observed: `member ${member} ${m.session}/${m.state}, 0 connections` };
    } catch (err) {
      return { done: false, observed: (err as Error).message };
    }
  }

  async restore(ctx: ProviderContext, saved: unknown): Promise<void> {
    if (!isSaved(saved)) throw new ProviderError(`F5 restore for host ${ctx.host.name}: the journal entry of the drain is not readable`, false);
    const body: Member = {};
    if (saved.session) body.session = 'user-enabled';
    if (saved.state) body.state = 'user-up';
    if (Object.keys(body).length > 0) await this.patch(ctx, saved.member, body);
  }

  /**
   * Serving again: what drain changed is back (session enabled, state not user-down), and the member is up by its
   * health monitor (`up`, or `unchecked` without a monitor): a member enabled but marked `down` gets no traffic.
   */
  async isRestored(ctx: ProviderContext, saved: unknown): Promise<Check> {
    if (!isSaved(saved)) return { done: false, observed: 'the journal entry of the drain is not readable' };
    try {
      const m = await this.read(ctx, saved.member);
      if (saved.session && m.session === 'user-disabled') return { done: false, observed: `member ${saved.member} session is still user-disabled` };
      if (saved.state && m.state === 'user-down') return { done: false, observed: `member ${saved.member} state is still user-down` };
      if (!saved.session && !saved.state)
        return { done: true, observed: `member ${saved.member} ${m.session}/${m.state} (drain changed nothing: left as it was)` };
      if (m.state !== 'up' && m.state !== 'unchecked')
        return { done: false, observed: `member ${saved.member} is ${m.state ?? 'in an unknown state'} (health monitor)` };
      return { done: true, observed: `member ${saved.member} ${m.session}/${m.state}` };
    } catch (err) {
      return { done: false, observed: `state unknown: ${(err as Error).message}` };
    }
  }

  async isRegistered(ctx: ProviderContext): Promise<Check> {
    const member = ctx.render(this.o.member);
    try {
      const m = await this.read(ctx, member);
      return { done: true, observed: `member ${member} of pool ${this.pool()} (${m.session}/${m.state})` };
    } catch (err) {
      return { done: false, observed: (err as Error).message };
    }
  }

  async close(): Promise<void> {
    await this.tls?.close();
  }
}

export const f5Provider: ProviderType<Options> = {
  type: 'f5',
  role: 'drain',
  options,
  doc: {
    summary:
      'F5 BIG-IP LTM pool members through iControl REST: drain disables the member (no new connections) or forces it offline; restore puts back its session and state.',
    checkedAgainst: 'a local server answering the recorded iControl REST shapes of BIG-IP 15/16/17 (F5 does not install here)',
    example:
      'type: f5\nurl: https://bigip.example.com\npool: order_pool\nmember: "{{host.address}}:8080"\nusername: { env: F5_USER }\npassword: { env: F5_PASSWORD }\n# mode: disable          # or offline',
    options: {
      username: 'iControl REST user, a secret ({ env: NAME } / { file: PATH }).',
      password: 'Its password, a secret.',
      loginProvider: 'Login provider for the token request (tmos for local users; the name of an LDAP/RADIUS/TACACS provider otherwise).',
      timeout: 'How long one iControl REST request may take.',
      url: 'BIG-IP management URL.',
      partition: 'Partition of the pool.',
      pool: 'Pool name.',
      member: "The host's member, address:port (a template).",
      mode: '`disable`: user-disabled (persistent connections may stay); `offline`: forced offline.',
      syncGroup: 'Device group to config-sync after each change.',
    },
  },
  describe: (o, c) => {
    const path = `/mgmt/tm/ltm/pool/~${o.partition}~${o.pool}/members/~${o.partition}~${c.render(o.member)}`;
    return {
      drain: `F5 ${o.url}: PATCH ${path} ${o.mode === 'disable' ? 'session=user-disabled' : 'session=user-disabled state=user-down'}${o.syncGroup ? `; config-sync to ${o.syncGroup}` : ''}`,
      check: `GET ${path}/stats: current connections 0`,
      restore: `PATCH ${path} back to the session/state drain saw`,
    };
  },
  create: (o, env) => new F5Provider(o, env, env.secrets.resolve(o.username), env.secrets.resolve(o.password), resolveTls(o.tls, env)),
};
