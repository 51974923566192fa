import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/errors.js';
import { f5Provider } from '../../src/providers/lb/f5.js';
import type { Provider, ProviderEnv } from '../../src/providers/types.js';
import { makeContext, makeEnv, makeHost } from '../helpers/contexts.js';
import { hasOpenssl, makeTestPki, type TestPki } from '../helpers/tls.js';

/**
 * A stand-in BIG-IP answering the iControl REST shapes of protocols.md §7.3: token login, pool member
 * GET/PATCH and member /stats. It records every request so the tests can assert what graywave sends.
 * Given a key and certificate it serves HTTPS, as a real BIG-IP does (usually with a self-signed certificate).
 */
interface Req {
  method: string;
  path: string;
  token?: string;
  body?: unknown;
}

const USER = 'gw-admin';
const PASSWORD = 'pa55-w0rd-s3cret';
const POOL = '/mgmt/tm/ltm/pool/~Common~order_pool/members';

class FakeBigip {
  requests: Req[] = [];
  members = new Map<string, { session: string; state: string; conns: number | null }>();
  tokens = new Set<string>();
  issued = 0;
  statsStatus = 200;
  private readonly srv: http.Server;
  url = '';

  constructor(private readonly tls?: { key: string; cert: string }) {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res);
    this.srv = tls ? https.createServer(tls, handler) : http.createServer(handler);
  }

  async start() {
    await new Promise<void>((r) => this.srv.listen(0, '127.0.0.1', r));
    this.url = `${this.tls ? 'https' : 'http'}://127.0.0.1:${(this.srv.address() as AddressInfo).port}`;
  }
  stop() {
    return new Promise<void>((r) => (this.srv.closeAllConnections(), this.srv.close(() => r())));
  }
  reset() {
    this.requests = [];
    this.members = new Map([['~Common~10.0.0.5:8080', { session: 'monitor-enabled', state: 'up', conns: 3 }]]);
    this.statsStatus = 200;
    this.issued = 0;
    this.tokens.clear();
  }
  /** Requests without the login, as `METHOD path body`. */
  calls(): string[] {
    return this.requests.filter((r) => !r.path.includes('authn')).map((r) => `${r.method} ${r.path}${r.body ? ' ' + JSON.stringify(r.body) : ''}`);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse) {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const path = req.url!;
      const body = raw ? JSON.parse(raw) : undefined;
      const token = req.headers['x-f5-auth-token'] as string | undefined;
      this.requests.push({ method: req.method!, path, token, body });
      const send = (status: number, json: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      if (req.method === 'POST' && path === '/mgmt/shared/authn/login') {
        if (req.headers['content-type'] !== 'application/json') return send(415, { code: 415, message: 'Unsupported Media Type' });
        if (body?.username !== USER || body?.password !== PASSWORD || body?.loginProviderName !== 'tmos') {
          return send(401, { code: 401, message: 'Authentication failed.', errorStack: [] });
        }
        const t = `TOKEN-${++this.issued}-XYZ`;
        this.tokens.add(t);
        return send(200, {
          username: USER,
          loginProviderName: 'tmos',
          token: { token: t, name: t, expirationMicros: (Date.now() + 1_200_000) * 1000, timeout: 1200 },
        });
      }
      if (!token || !this.tokens.has(token)) return send(401, { code: 401, message: 'X-F5-Auth-Token does not exist.', errorStack: [] });
      if (req.method === 'POST' && path === '/mgmt/tm/cm') return send(200, { kind: 'tm:cm:runstate', command: 'run', utilCmdArgs: body.utilCmdArgs });
      const m = /^\/mgmt\/tm\/ltm\/pool\/~Common~order_pool\/members\/([^/?]+)(\/stats)?$/.exec(path);
      const key = m ? decodeURIComponent(m[1]!) : '';
      const member = this.members.get(key);
      if (!m || !member)
        return send(404, { code: 404, message: `01020036:3: The requested Pool Member (/Common/order_pool ${key}) was not found.`, errorStack: [] });
      const self = `https://localhost${POOL}/${m[1]}`;
      if (m[2]) {
        if (this.statsStatus !== 200) return send(this.statsStatus, { code: this.statsStatus, message: 'stats unavailable' });
        const entries: Record<string, unknown> = { 'serverside.curSessions': { value: 0 } };
        if (member.conns !== null) entries['serverside.curConns'] = { value: member.conns };
        return send(200, {
          kind: 'tm:ltm:pool:members:membersstats',
          selfLink: `${self}/stats?ver=15.1.0`,
          entries: { [`${self}/${m[1]}/stats`]: { nestedStats: { entries } } },
        });
      }
      // A member set user-up reads back by its health monitor's verdict (`up` here), never as "user-up".
      if (req.method === 'PATCH') Object.assign(member, body, body.state === 'user-up' ? { state: 'up' } : {});
      else if (req.method !== 'GET') return send(405, { code: 405, message: 'method not allowed' });
      return send(200, {
        kind: 'tm:ltm:pool:members:membersstate',
        name: key.split('~')[2],
        partition: 'Common',
        session: member.session,
        state: member.state,
        selfLink: `${self}?ver=15.1.0`,
      });
    });
  }
}

describe('f5 provider against a stand-in iControl REST server', () => {
  const bigip = new FakeBigip();
  let env: ProviderEnv;
  const envVars = { F5_USER: USER, F5_PASSWORD: PASSWORD };

  beforeAll(() => bigip.start());
  afterAll(() => bigip.stop());
  beforeEach(() => {
    bigip.reset();
    env = makeEnv({ env: envVars });
  });

  function create(extra: Record<string, unknown> = {}, e = env): Provider {
    const o = f5Provider.options.parse({
      url: bigip.url,
      pool: 'order_pool',
      member: '{{host.address}}:8080',
      username: { env: 'F5_USER' },
      password: { env: 'F5_PASSWORD' },
      ...extra,
    });
    return f5Provider.create(o, e) as Provider;
  }
  const ctx = () => makeContext({ host: makeHost('app-01', '10.0.0.5') });

  it('disable: logs in with a token, reads the member, PATCHes session user-disabled; restore enables the session only', async () => {
    const p = create();
    const saved = await p.drain(ctx());
    expect(bigip.requests[0]).toEqual({
      method: 'POST',
      path: '/mgmt/shared/authn/login',
      token: undefined,
      body: { username: USER, password: PASSWORD, loginProviderName: 'tmos' },
    });
    expect(bigip.calls()).toEqual([`GET ${POOL}/~Common~10.0.0.5:8080`, `PATCH ${POOL}/~Common~10.0.0.5:8080 {"session":"user-disabled"}`]);
    expect(bigip.requests.slice(1).every((r) => r.token === 'TOKEN-1-XYZ')).toBe(true);
    expect(saved).toEqual({ member: '10.0.0.5:8080', session: true, state: false });
    expect(JSON.stringify(saved)).not.toMatch(/TOKEN|pa55/);

    bigip.requests = [];
    await p.restore(ctx(), saved);
    expect(bigip.calls()).toEqual([`PATCH ${POOL}/~Common~10.0.0.5:8080 {"session":"user-enabled"}`]);
    expect(bigip.members.get('~Common~10.0.0.5:8080')).toMatchObject({ session: 'user-enabled', state: 'up' });
    expect(bigip.issued).toBe(1); // the token is reused
  });

  it('isDrained: disabled and serverside.curConns 0 in /stats; connections, missing stats or a failed query are not drained', async () => {
    const p = create();
    expect(await p.isDrained(ctx())).toEqual({ done: false, observed: 'member 10.0.0.5:8080 session is monitor-enabled, not user-disabled' });
    await p.drain(ctx());
    bigip.requests = [];
    expect(await p.isDrained(ctx())).toEqual({ done: false, observed: 'member 10.0.0.5:8080: 3 server-side connections' });
    expect(bigip.calls()).toEqual([`GET ${POOL}/~Common~10.0.0.5:8080`, `GET ${POOL}/~Common~10.0.0.5:8080/stats`]);
    bigip.members.get('~Common~10.0.0.5:8080')!.conns = null;
    expect(await p.isDrained(ctx())).toEqual({ done: false, observed: 'no serverside.curConns in the stats of member 10.0.0.5:8080' });
    bigip.statsStatus = 503;
    expect(await p.isDrained(ctx())).toMatchObject({
      done: false,
      observed: expect.stringMatching(/reading stats of pool member 10.0.0.5:8080 failed \(HTTP 503: stats unavailable\)/),
    });
    bigip.statsStatus = 200;
    bigip.members.get('~Common~10.0.0.5:8080')!.conns = 0;
    expect(await p.isDrained(ctx())).toEqual({ done: true, observed: 'member 10.0.0.5:8080 user-disabled/up, 0 connections' });
  });

  it('offline: PATCHes session and state, waits for user-down, restores both', async () => {
    const p = create({ mode: 'offline' });
    const saved = await p.drain(ctx());
    expect(bigip.calls()).toEqual([`GET ${POOL}/~Common~10.0.0.5:8080`, `PATCH ${POOL}/~Common~10.0.0.5:8080 {"session":"user-disabled","state":"user-down"}`]);
    bigip.members.get('~Common~10.0.0.5:8080')!.conns = 0;
    expect(await p.isDrained(ctx())).toMatchObject({ done: true });
    bigip.members.get('~Common~10.0.0.5:8080')!.state = 'up'; // someone brought it back: not drained any more
    expect(await p.isDrained(ctx())).toEqual({ done: false, observed: 'member 10.0.0.5:8080 state is up, not user-down' });
    bigip.members.get('~Common~10.0.0.5:8080')!.state = 'user-down';
    expect(await p.isRestored!(ctx(), saved)).toEqual({ done: false, observed: 'member 10.0.0.5:8080 session is still user-disabled' });
    bigip.requests = [];
    await p.restore(ctx(), saved);
    expect(bigip.calls()).toEqual([`PATCH ${POOL}/~Common~10.0.0.5:8080 {"session":"user-enabled","state":"user-up"}`]);
    expect(await p.isRestored!(ctx(), saved)).toEqual({ done: true, observed: 'member 10.0.0.5:8080 user-enabled/up' });
    // Enabled, but its health monitor marks it down: it gets no traffic, so it is not serving.
    bigip.members.get('~Common~10.0.0.5:8080')!.state = 'down';
    expect(await p.isRestored!(ctx(), saved)).toEqual({ done: false, observed: 'member 10.0.0.5:8080 is down (health monitor)' });
    expect(await p.isRegistered!(ctx())).toMatchObject({ done: true });
    expect(await p.isRegistered!(makeContext({ host: makeHost('app-09', '10.0.0.9') }))).toMatchObject({
      done: false,
      observed: expect.stringMatching(/not found/),
    });
  });

  it('leaves a member an operator had disabled alone, and keeps ownership of its own change on resume', async () => {
    bigip.members.get('~Common~10.0.0.5:8080')!.session = 'user-disabled';
    const p = create({ mode: 'offline' });
    const saved = await p.drain(ctx());
    expect(saved).toEqual({ member: '10.0.0.5:8080', session: false, state: true });
    expect(bigip.calls()[1]).toBe(`PATCH ${POOL}/~Common~10.0.0.5:8080 {"state":"user-down"}`);
    // a repeated drain (resume with the earlier attempt's data) sends no PATCH and still owns the state change
    bigip.requests = [];
    expect(await p.drain(makeContext({ host: makeHost('app-01', '10.0.0.5'), previous: saved }))).toEqual(saved);
    expect(bigip.calls()).toEqual([`GET ${POOL}/~Common~10.0.0.5:8080`]);
    bigip.requests = [];
    await p.restore(ctx(), saved);
    expect(bigip.calls()).toEqual([`PATCH ${POOL}/~Common~10.0.0.5:8080 {"state":"user-up"}`]);
    expect(bigip.members.get('~Common~10.0.0.5:8080')).toMatchObject({ session: 'user-disabled', state: 'up' });
  });

  it('logs in again once when the token was revoked or expired', async () => {
    const p = create();
    await p.drain(ctx());
    bigip.tokens.clear();
    bigip.requests = [];
    await p.restore(ctx(), { member: '10.0.0.5:8080', session: true, state: false });
    expect(bigip.requests.map((r) => `${r.method} ${r.path} ${r.token ?? '-'}`)).toEqual([
      `PATCH ${POOL}/~Common~10.0.0.5:8080 TOKEN-1-XYZ`,
      'POST /mgmt/shared/authn/login -',
      `PATCH ${POOL}/~Common~10.0.0.5:8080 TOKEN-2-XYZ`,
    ]);
  });

  it('encodes route domains as %25, and runs config-sync when syncGroup is set', async () => {
    bigip.members.set('~Common~10.0.0.5%2:8080', { session: 'user-enabled', state: 'up', conns: 0 });
    const p = create({ member: '{{host.address}}%2:8080', syncGroup: 'dg-ha' });
    await p.drain(ctx());
    expect(bigip.calls()).toEqual([
      `GET ${POOL}/~Common~10.0.0.5%252:8080`,
      `PATCH ${POOL}/~Common~10.0.0.5%252:8080 {"session":"user-disabled"}`,
      'POST /mgmt/tm/cm {"command":"run","utilCmdArgs":"config-sync to-group dg-ha"}',
    ]);
  });

  it('fails clearly on an unknown member and on a bad login, without showing secrets', async () => {
    const err = await create({ member: '10.0.0.9:8080' })
      .drain(ctx())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).retryable).toBe(false);
    expect((err as Error).message).toMatch(
      /host app-01: reading pool member 10.0.0.9:8080: pool member 10.0.0.9:8080 not found in pool \/Common\/order_pool: 01020036:3: .*was not found\.; check pool/,
    );

    const dir = mkdtempSync(join(tmpdir(), 'gw-f5-'));
    try {
      writeFileSync(join(dir, 'pw'), 'wrong-password\n');
      const bad = create({ password: { file: 'pw' } }, makeEnv({ dir, env: envVars }));
      const e2 = await bad.drain(ctx()).catch((e: unknown) => e);
      expect((e2 as Error).message).toMatch(/login failed \(HTTP 401: Authentication failed\.\); check the username\/password secrets/);
      expect((e2 as Error).message).not.toContain('wrong-password');
      expect(bigip.requests.at(-1)!.body).toMatchObject({ password: 'wrong-password' }); // file secret read, trailing newline dropped
      expect(await bad.isDrained(ctx())).toMatchObject({ done: false });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('masks the session token it obtained; options are strict and secrets must be references', async () => {
    await create().drain(ctx());
    expect(env.secrets.mask('header TOKEN-1-XYZ and pa55-w0rd-s3cret')).toBe('header *** and ***');
    expect(f5Provider.options.safeParse({ url: bigip.url, pool: 'p', member: 'm', username: { env: 'U' }, password: 'plain' }).success).toBe(false);
    expect(f5Provider.options.safeParse({ url: bigip.url, pool: 'p', member: 'm', username: { env: 'U' }, password: { env: 'P' }, weight: 0 }).success).toBe(
      false,
    );
    expect(
      f5Provider.options.safeParse({ url: bigip.url, pool: 'p', member: 'm', username: { env: 'U' }, password: { env: 'P' }, mode: 'drain' }).success,
    ).toBe(false);
    expect(() => create({ password: { env: 'NOT_SET_ANYWHERE' } })).toThrow(/secret env var NOT_SET_ANYWHERE is not set/);
  });
});

describe.skipIf(!hasOpenssl())('f5 provider against the stand-in BIG-IP over HTTPS with a self-signed certificate', () => {
  let pki: TestPki;
  let bigip: FakeBigip;
  const envVars = { F5_USER: USER, F5_PASSWORD: PASSWORD };
  const opened: Provider[] = [];

  beforeAll(async () => {
    pki = makeTestPki();
    bigip = new FakeBigip({ key: pki.serverKey, cert: pki.serverCert });
    await bigip.start();
  });
  afterAll(async () => {
    await Promise.all(opened.map((p) => p.close?.()));
    await bigip?.stop();
    pki?.cleanup();
  });
  beforeEach(() => bigip.reset());

  /** The playbook's directory is the PKI dir: tls file names are relative to it. */
  function create(extra: Record<string, unknown> = {}): Provider {
    const o = f5Provider.options.parse({
      url: bigip.url,
      pool: 'order_pool',
      member: '{{host.address}}:8080',
      username: { env: 'F5_USER' },
      password: { env: 'F5_PASSWORD' },
      ...extra,
    });
    const p = f5Provider.create(o, makeEnv({ dir: pki.dir, env: envVars })) as Provider;
    opened.push(p);
    return p;
  }
  const ctx = () => makeContext({ host: makeHost('app-01', '10.0.0.5') });

  it('without tls: the login fails with the URL, the certificate problem and the tls.ca hint; nothing reaches the BIG-IP', async () => {
    expect(bigip.url).toMatch(/^https:/);
    const err = await create()
      .drain(ctx())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as Error).message).toBe(
      `POST ${bigip.url}/mgmt/shared/authn/login: TLS: the server's certificate is not trusted: self-signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT); ` +
        'trust its CA with tls: { ca: CA.pem } (a PEM file, relative to the playbook), or tls: { insecureSkipVerify: true } in a lab',
    );
    expect(bigip.requests).toEqual([]);
    // isDrained reports it as the observed state (never drained)
    expect(await create().isDrained(ctx())).toMatchObject({ done: false, observed: expect.stringContaining('tls: { ca: CA.pem }') });
  });

  it('tls.ca: drain, isDrained and restore work over HTTPS exactly as over HTTP, without a warning', async () => {
    const p = create({ tls: { ca: 'server.pem' } });
    const c = ctx();
    const saved = await p.drain(c);
    expect(bigip.requests[0]).toMatchObject({ method: 'POST', path: '/mgmt/shared/authn/login', body: { username: USER, password: PASSWORD } });
    expect(bigip.calls()).toEqual([`GET ${POOL}/~Common~10.0.0.5:8080`, `PATCH ${POOL}/~Common~10.0.0.5:8080 {"session":"user-disabled"}`]);
    bigip.members.get('~Common~10.0.0.5:8080')!.conns = 0;
    expect(await p.isDrained(c)).toEqual({ done: true, observed: 'member 10.0.0.5:8080 user-disabled/up, 0 connections' });
    await p.restore(c, saved);
    expect(bigip.members.get('~Common~10.0.0.5:8080')).toMatchObject({ session: 'user-enabled' });
    expect(c.lines.filter((l) => /warning/i.test(l))).toEqual([]);
  });

  it('tls.insecureSkipVerify: works, and warns once for the provider (not per call or per host)', async () => {
    const p = create({ tls: { insecureSkipVerify: true } });
    const first = ctx();
    await p.drain(first); // login + GET + PATCH: three calls
    const second = makeContext({ host: makeHost('app-02', '10.0.0.5') });
    await p.isDrained(second);
    expect(bigip.calls().length).toBeGreaterThanOrEqual(4);
    const warnings = [...first.lines, ...second.lines].filter((l) => /warning/i.test(l));
    expect(warnings).toEqual([
      `warning: tls.insecureSkipVerify is true: the certificate of ${bigip.url} is not checked (anyone on the path can read and change these calls, credentials included)`,
    ]);
  });

  it('a tls file that cannot be read stops the provider at creation, naming the key', () => {
    expect(() => create({ tls: { ca: 'certs/bigip-ca.pem' } })).toThrow('tls.ca: cannot read certs/bigip-ca.pem (no such file)');
    expect(
      f5Provider.options.safeParse({
        url: 'https://b',
        pool: 'p',
        member: 'm',
        username: { env: 'U' },
        password: { env: 'P' },
        tls: { ca: 'a.pem', verify: false },
      }).success,
    ).toBe(false);
  });
});
