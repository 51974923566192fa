/**
 * Secrets never leave graywave unmasked (issue 9, "Secrets"): a full release through the CLI with every kind of
 * secret — a Nacos password from an env var and the access token the (Nacos-shaped) server hands out, an
 * http-admin header token, a webhook URL and its Authorization header — where a `run` step echoes the secret env
 * vars, a failing attempt prints one to stderr, and servers echo secrets back in their error bodies. Then a second
 * release that halts on such an error. Every byte of stdout, stderr and every file under the state dir is searched
 * for the secret values: none may appear, and `***` must appear where one was masked.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from '../../src/sandbox/registry.js';
import { cli, events, requireBuiltCli, tempDirs, writePlaybook, type CliResult } from '../helpers/cli.js';

requireBuiltCli();
const temp = tempDirs('gw-secrets-');

const rnd = () => randomBytes(9).toString('hex');
const PASSWORD = `pw-${rnd()}`;
const ADMIN_TOKEN = `adm-${rnd()}`;
const HOOK_AUTH = `Bearer hook-${rnd()}`;
const HOOK_PATH_TOKEN = `T${rnd()}`;
const env = {
  GW_TEST_NACOS_PASSWORD: PASSWORD,
  GW_TEST_ADMIN_TOKEN: ADMIN_TOKEN,
  GW_TEST_HOOK_AUTH: HOOK_AUTH,
  GW_TEST_HOOK_URL: '', // set once the server listens
};
const HOSTS = ['h-01', 'h-02', 'h-03'];
const ip = (i: number) => `10.0.7.${i + 1}`;

function listen(server: http.Server): Promise<string> {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

/** Every file under `dir`, recursively, with its text. */
function filesUnder(dir: string): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push({ path: p, text: readFileSync(p, 'latin1') });
  }
  return out;
}

describe('secrets in a full release (CLI end to end)', () => {
  const registry = new Registry({ auth: { username: 'nacos', password: PASSWORD } });
  const nacos = http.createServer(registry.handle);
  /** http-admin endpoints per host: the first drain of each host is refused with the token echoed back. */
  const adminState = new Map<string, string>();
  const refusedOnce = new Set<string>();
  const admin = http.createServer((req, res) => {
    req.resume();
    const m = /^\/admin\/([\w-]+)\/(suspend|resume|status)$/.exec(req.url ?? '');
    const token = req.headers['x-admin-token'];
    if (!m) return void res.writeHead(404).end('no such endpoint');
    if (token !== ADMIN_TOKEN) return void res.writeHead(401).end(`bad token ${String(token)}`);
    const [, host, op] = m as unknown as [string, string, string];
    if (host.startsWith('x-')) return void res.writeHead(500).end(`internal error: token ${token} is locked out`);
    if (op === 'suspend' && !refusedOnce.has(host)) {
      refusedOnce.add(host);
      return void res.writeHead(503).end(`busy: token ${token} must retry`);
    }
    if (op === 'suspend') adminState.set(host, 'suspended');
    if (op === 'resume') adminState.set(host, 'running');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ consumer: adminState.get(host) ?? 'running' }));
  });
  /** The webhook receiver refuses with its Authorization header echoed back (a misconfigured proxy). */
  const hookBodies: string[] = [];
  const hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      hookBodies.push(body);
      res.writeHead(500).end(`proxy: credentials ${String(req.headers.authorization)} not accepted`);
    });
  });
  let dir = '';
  const outputs: { what: string; r: CliResult }[] = [];

  beforeAll(async () => {
    const nacosUrl = await listen(nacos);
    const adminUrl = await listen(admin);
    env.GW_TEST_HOOK_URL = `${await listen(hook)}/hooks/${HOOK_PATH_TOKEN}`;
    for (const [i] of [...HOSTS, 'x-01'].entries()) {
      registry.add({ service: 'DEFAULT_GROUP@@order-service', ip: ip(i), port: 8080 });
    }
    dir = temp();
    const header = `headers: { X-Admin-Token: { env: GW_TEST_ADMIN_TOKEN } }`;
    const common = (name: string, hosts: string, waves: string) => `name: ${name}
version: "5.0"
hosts:
${hosts}
providers:
  registry:
    type: nacos
    url: "${nacosUrl}"
    services: [order-service]
    port: 8080
    username: nacos
    password: { env: GW_TEST_NACOS_PASSWORD }
  admin:
    type: http-admin
    drain: { http: "${adminUrl}/admin/{{host.name}}/suspend", method: POST, ${header} }
    restore: { http: "${adminUrl}/admin/{{host.name}}/resume", method: POST, ${header} }
    check: { http: "${adminUrl}/admin/{{host.name}}/status", ${header}, jsonPath: consumer, equals: suspended }
notify:
  - name: hook
    webhook: { url: { env: GW_TEST_HOOK_URL }, headers: { Authorization: { env: GW_TEST_HOOK_AUTH } } }
    on: [started, wave-done, halted, done]
waves: ${waves}
steps:
  - drain: registry
    interval: 100ms
  - drain: admin
    retries: 1
    interval: 100ms
  - name: deploy
    retries: 1
    run: >-
      echo "deploying with password $GW_TEST_NACOS_PASSWORD and token $GW_TEST_ADMIN_TOKEN";
      if [ ! -f {{host.name}}.tried ]; then touch {{host.name}}.tried; echo "login failed for $GW_TEST_NACOS_PASSWORD" >&2; exit 1; fi
  - restore: admin
  - restore: registry
`;
    writePlaybook(
      dir,
      common('full', HOSTS.map((h, i) => `  - { name: ${h}, address: ${ip(i)} }`).join('\n'), '{ canary: 1, size: 2, concurrency: 2, maxFailures: 0 }'),
      'full.yaml',
    );
    // x-01: its admin endpoint always answers 500 with the token in the body — a release that halts on it.
    writePlaybook(dir, common('halts', `  - { name: x-01, address: ${ip(3)} }`, '{ size: 1, maxFailures: 0 }'), 'halts.yaml');
  });
  afterAll(async () => {
    await Promise.all([nacos, admin, hook].map((s) => new Promise((r) => s.close(r))));
  });

  it('a full release and a halted one: no secret value in stdout, stderr or any state file; *** where they were masked', async () => {
    const state = join(dir, 'state');
    const run = async (what: string, args: string[]) => {
      const r = await cli([...args, '--state-dir', state], { cwd: dir, env });
      outputs.push({ what, r });
      return r;
    };
    const full = await run('run full --json', ['run', join(dir, 'full.yaml'), '--yes', '--json']);
    expect(full.code, full.stdout + full.stderr).toBe(0);
    const ev = events(full.stdout);
    // The release really went through the secret-bearing paths.
    expect(ev.at(-1)).toMatchObject({ event: 'run.done' });
    const retries = ev.filter((e) => e.event === 'step.retry');
    expect(retries.filter((e) => e.step === 'drain:admin').map((e) => e.error)).toEqual(
      HOSTS.map(() => expect.stringMatching(/HTTP 503: busy: token \*\*\* must retry/)),
    );
    expect(retries.filter((e) => e.step === 'deploy')).toHaveLength(HOSTS.length);
    const tokens = new Set(registry.requests.map((q) => q.params.accessToken).filter((t): t is string => !!t));
    expect(tokens.size).toBeGreaterThanOrEqual(1); // the Nacos token the server issued, used on every call
    expect(registry.requests.some((q) => q.path === '/nacos/v1/auth/login' && q.params.password === PASSWORD)).toBe(true);
    expect(hookBodies.length).toBeGreaterThanOrEqual(3);
    expect(full.stderr).toMatch(/warning: notify hook: .* not delivered: HTTP 500: proxy: credentials \*\*\* not accepted/);

    const halts = await run('run halts --plain', ['run', join(dir, 'halts.yaml'), '--yes', '--plain', '--skip-preflight']);
    expect(halts.code, halts.stdout + halts.stderr).toBe(1);
    expect(halts.stdout).toMatch(/HALTED: .*x-01 at drain:admin: .* answered HTTP 500: internal error: token \*\*\* is locked out/);
    await run('status full', ['status', join(dir, 'full.yaml')]);
    await run('status halts --json', ['status', join(dir, 'halts.yaml'), '--json']);
    expect(JSON.parse(outputs.at(-1)!.r.stdout).reason).toMatch(/token \*\*\* is locked out/);

    // Every token the server issued (each CLI process logs in once).
    for (const q of registry.requests) if (q.params.accessToken) tokens.add(q.params.accessToken);
    expect(tokens.size).toBeGreaterThanOrEqual(2);
    const secrets = {
      PASSWORD,
      ADMIN_TOKEN,
      HOOK_AUTH,
      HOOK_URL: env.GW_TEST_HOOK_URL,
      ...Object.fromEntries([...tokens].map((t, i) => [`NACOS_TOKEN_${i}`, t])),
    };
    const haystacks = [
      ...outputs.flatMap(({ what, r }) => [
        { path: `${what}: stdout`, text: r.stdout },
        { path: `${what}: stderr`, text: r.stderr },
      ]),
      ...filesUnder(state),
    ];
    expect(haystacks.map((h) => h.path)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/full[/\\]journal\.jsonl$/),
        expect.stringMatching(/halts[/\\]journal\.jsonl$/),
        expect.stringMatching(/_notify\.log$/),
        expect.stringMatching(/h-01\.log$/),
      ]),
    );
    const leaks: string[] = [];
    for (const h of haystacks) for (const [name, value] of Object.entries(secrets)) if (h.text.includes(value)) leaks.push(`${name} in ${h.path}`);
    expect(leaks).toEqual([]);

    // Masked, not dropped: *** stands where each secret was.
    const file = (re: RegExp) => haystacks.find((h) => re.test(h.path))!.text;
    expect(file(/full[/\\]logs[/\\]h-02\.log$/)).toContain('deploying with password *** and token ***');
    expect(file(/full[/\\]logs[/\\]h-02\.log$/)).toContain('login failed for ***');
    expect(file(/full[/\\]logs[/\\]h-02\.log$/)).toMatch(/drain:admin failed: .*token \*\*\* must retry/);
    expect(file(/_notify\.log$/)).toMatch(/credentials \*\*\* not accepted/);
    expect(file(/halts[/\\]journal\.jsonl$/)).toMatch(/token \*\*\* is locked out/);
    const counted = haystacks.reduce((n, h) => n + (h.text.match(/\*\*\*/g)?.length ?? 0), 0);
    console.log(
      `secrets: ${Object.keys(secrets).length} secret values searched in ${haystacks.length} outputs and files, ${counted} masked occurrences, 0 leaks`,
    );
  }, 90_000);
});
