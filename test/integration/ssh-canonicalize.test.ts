import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { requireBuiltCli } from '../helpers/cli.js';
import { hasDns, startDns, type Dns } from './helpers/dns.js';
import { removeDir, tempDir } from './helpers/process.js';
import { hasSshd, loopbacks, startSshFleet, type SshFleet } from './helpers/sshd.js';

/**
 * CanonicalizeHostname as OpenSSH does it, against a real DNS server (dnsmasq) that knows a few names: `ssh -G` is
 * the oracle for the configs in fixtures/ssh-config/canonicalize/, and a real sshd is reached through a name that
 * only canonicalisation makes resolvable. Both ssh and graywave (its built code, tests/…/ssh-canonical-probe.mjs) run
 * in a mount namespace whose /etc/resolv.conf names that server; the machine's own resolver is not touched.
 */
const run = promisify(execFile);
const FIXTURES = resolve(import.meta.dirname, '../../fixtures/ssh-config/canonicalize');
const PROBE = resolve(import.meta.dirname, 'helpers/ssh-canonical-probe.mjs');
const RECORDS = { 'web1.corp.test': '127.0.0.5', 'api.corp.test': '127.0.0.6', 'db.other.test': '127.0.0.7', 'a.b.corp.test': '127.0.0.8' };
requireBuiltCli();

const ready = hasDns() && hasSshd(); // CI=true: missing is a failure

describe.skipIf(!ready)('CanonicalizeHostname (real DNS server, ssh -G and real sshd)', () => {
  let dir: string;
  let dns: Dns;
  let fleet: SshFleet;

  beforeAll(async () => {
    dir = tempDir('canon');
    dns = await startDns(RECORDS, dir);
    fleet = await startSshFleet(loopbacks(5, 6), { pam: false }); // one fleet keeps `UsePAM no`, as some hardened hosts have it
  }, 60_000);
  afterAll(async () => {
    await dns?.stop();
    await fleet?.stop();
    removeDir(dir);
  });

  async function inNs(cmd: string, args: string[]): Promise<string> {
    const [c, a] = dns.inNamespace(cmd, args);
    return (await run(c, a, { encoding: 'utf8', timeout: 60_000, env: { ...process.env, HOME: dir } })).stdout;
  }

  /** `ssh -G` fields, or the error line ssh stops with (CanonicalizeFallbackLocal no). */
  async function sshG(file: string, host: string): Promise<{ host: string; hostname: string; user: string; port: number } | { host: string; error: string }> {
    const [c, a] = dns.inNamespace('/usr/bin/ssh', ['-G', '-F', file, host]);
    try {
      const { stdout } = await run(c, a, { encoding: 'utf8', timeout: 60_000 });
      const one = (k: string) => new RegExp(`^${k} (.*)$`, 'm').exec(stdout)?.[1];
      return { host, hostname: one('hostname')!, user: one('user')!, port: Number(one('port')) };
    } catch (err) {
      return { host, error: String((err as { stderr?: string }).stderr).trim() };
    }
  }

  for (const fixture of readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.conf'))
    .sort()) {
    test(fixture, async () => {
      const file = join(FIXTURES, fixture);
      const hosts = /^# hosts: (.*)$/m.exec(readFileSync(file, 'utf8'))![1]!.split(' ');
      const want = await Promise.all(hosts.map((h) => sshG(file, h)));
      const got = JSON.parse(await inNs(process.execPath, [PROBE, 'lookup', file, ...hosts])) as { host: string; error?: string }[];
      expect(got.map((g) => (g.error ? { host: g.host, error: expect.stringContaining('could not resolve host') } : g))).toEqual(
        want.map((w) => ('error' in w ? { host: w.host, error: expect.any(String) } : w)),
      );
      // Where ssh gives up, graywave does too (and says why).
      expect(got.map((g) => !!g.error)).toEqual(want.map((w) => 'error' in w));
    });
  }

  test('CanonicalizeFallbackLocal no: a name no domain resolves stops ssh, and graywave', async () => {
    const file = join(dir, 'strict.conf');
    writeFileSync(file, '# hosts: web1 ghost\nHost *\n  CanonicalizeHostname yes\n  CanonicalDomains corp.test\n  CanonicalizeFallbackLocal no\n');
    const want = await Promise.all(['web1', 'ghost'].map((h) => sshG(file, h)));
    expect(want[0]).toMatchObject({ hostname: 'web1.corp.test' });
    expect(want[1]).toMatchObject({ error: expect.stringMatching(/Could not resolve host "ghost"/) });
    const got = JSON.parse(await inNs(process.execPath, [PROBE, 'lookup', file, 'web1', 'ghost'])) as { hostname: string; error?: string }[];
    expect(got[0]).toMatchObject({ hostname: 'web1.corp.test' });
    expect(got[1]!.error).toMatch(/could not resolve host "ghost" with CanonicalDomains corp\.test and CanonicalizeFallbackLocal no \(.*strict\.conf:3\)/);
  });

  test('a real sshd reached by its canonical name: the final pass’s Host block applies, known_hosts names it', async () => {
    const config = join(dir, 'connect.conf');
    writeFileSync(
      config,
      [
        'Host *',
        '  CanonicalizeHostname yes',
        '  CanonicalDomains nope.test corp.test',
        // Only the canonical names have a Host block with the port, user and key: the first pass cannot connect.
        'Host *.corp.test',
        `  Port ${fleet.port}`,
        '  User root',
        `  IdentityFile ${fleet.clientKey}`,
        '',
      ].join('\n'),
    );
    const known = join(dir, 'known_hosts');
    writeFileSync(known, `[web1.corp.test]:${fleet.port} ${fleet.hostKeyPub}\n[api.corp.test]:${fleet.port} ${fleet.hostKeyPub}\n`);
    const out = JSON.parse(await inNs(process.execPath, [PROBE, 'connect', config, known, dir, 'web1', 'api'])) as {
      results: { host: string; stdout?: string; error?: string }[];
      logs: string[];
    };
    expect(out.results).toEqual([
      { host: 'web1', stdout: '127.0.0.5\nroot\n' },
      { host: 'api', stdout: '127.0.0.6\nroot\n' },
    ]);
    expect(out.logs).toContain(`web1: ssh config: ${config}:2: web1 canonicalised to web1.corp.test`);
  });
});
