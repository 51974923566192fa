import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { SshClientConfig } from '../../src/transport/ssh-config.js';
import { removeDir, requireBinary, tempDir } from '../integration/helpers/process.js';

/**
 * OpenSSH is the oracle: every config under fixtures/ssh-config/ is read by `ssh -G -F FILE HOST` and by
 * SshClientConfig, and the fields graywave uses must agree. `ssh -G` prints IdentityFile and ProxyCommand before
 * token expansion, so the expanded forms come from `ssh -v` (which logs "identity file X" and "Executing proxy
 * command: exec X" before it fails on a ProxyCommand of `false`). A fixture NAME.conf may have a NAME.home/
 * directory: it becomes $HOME (Include reads ~/.ssh from there); `@HOME@` in any fixture file is that directory.
 */
const SSH = '/usr/bin/ssh';
const hasSsh = requireBinary(SSH, 'apt-get install -y openssh-client'); // CI=true: missing is a failure
const FIXTURES = resolve(import.meta.dirname, '../../fixtures/ssh-config');
const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith('.conf')).sort();
const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

/** Hosts to look up: the fixture's first line, `# hosts: a b "c d"`. */
function hostsOf(text: string): string[] {
  const m = /^# hosts: (.*)$/m.exec(text);
  if (!m) throw new Error('fixture without a "# hosts:" line');
  return [...m[1]!.matchAll(/"([^"]*)"|(\S+)/g)].map((x) => x[1] ?? x[2]!);
}

function substituteTree(dir: string, home: string): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      chmodSync(p, 0o755);
      substituteTree(p, home);
    } else {
      writeFileSync(p, readFileSync(p, 'utf8').replaceAll('@HOME@', home));
      chmodSync(p, 0o644);
    }
  }
}

function prepare(fixture: string): { file: string; home: string } {
  const home = tempDir('sshcfg-home');
  dirs.push(home);
  const homeFixture = join(FIXTURES, fixture.replace(/\.conf$/, '.home'));
  if (existsSync(homeFixture)) cpSync(homeFixture, home, { recursive: true });
  substituteTree(home, home);
  const file = join(home, 'config-under-test');
  writeFileSync(file, readFileSync(join(FIXTURES, fixture), 'utf8').replaceAll('@HOME@', home), { mode: 0o644 });
  return { file, home };
}

interface Oracle {
  hostname: string;
  user: string;
  port: number;
  proxyjump?: string;
  proxycommand?: string;
  identityfiles: string[];
}

const run = promisify(execFile);

async function oracle(file: string, home: string, host: string): Promise<Oracle> {
  const env = { ...process.env, HOME: home };
  const g = (await run(SSH, ['-G', '-F', file, host], { env, encoding: 'utf8' })).stdout;
  const fields = new Map<string, string[]>();
  for (const line of g.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp < 0) continue;
    const k = line.slice(0, sp);
    fields.set(k, [...(fields.get(k) ?? []), line.slice(sp + 1)]);
  }
  const one = (k: string) => fields.get(k)?.[0];
  // Expanded identity files and proxy command: ssh -v, with a proxy that fails at once (never the network).
  const hasProxy = one('proxycommand') !== undefined;
  const args = ['-v', '-F', file, '-o', 'BatchMode=yes', ...(hasProxy ? [] : ['-o', 'ProxyCommand=false']), host, 'true'];
  const v = await run(SSH, args, { env, encoding: 'utf8', timeout: 40_000 }).catch((err: { stderr?: string }) => ({ stderr: err.stderr ?? '' }));
  const ids = [...v.stderr.matchAll(/^debug1: identity file (.*) type -?\d+\r?$/gm)].map((m) => m[1]!).filter((f) => !f.endsWith('-cert'));
  const cmd = /^debug1: Executing proxy command: exec (.*?)\r?$/m.exec(v.stderr)?.[1];
  return {
    hostname: one('hostname')!,
    user: one('user')!,
    port: Number(one('port')),
    proxyjump: one('proxyjump'),
    proxycommand: hasProxy ? cmd : undefined,
    identityfiles: ids,
  };
}

const DEFAULT_IDS = ['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk', 'id_xmss', 'id_dsa'].map((f) => join(userInfo().homedir, '.ssh', f));

describe.skipIf(!hasSsh)('ssh_config read as `ssh -G` reads it', () => {
  test('the corpus has at least 25 configs', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(25);
  });

  for (const fixture of fixtures) {
    test(fixture, async () => {
      const { file, home } = prepare(fixture);
      const cfg = SshClientConfig.load(file, { envHome: home, checkPerm: false });
      const hosts = hostsOf(readFileSync(file, 'utf8'));
      const oracles = await Promise.all(hosts.map((h) => oracle(file, home, h)));
      for (const [i, host] of hosts.entries()) {
        const want = oracles[i]!;
        const got = cfg.lookup(host);
        const ours: Oracle = {
          hostname: got.hostName ?? (isIP(host) ? host : host.toLowerCase()),
          user: got.user ?? userInfo().username,
          port: got.port ?? 22,
          proxyjump: got.proxyJump,
          proxycommand: got.proxyCommand,
          identityfiles: got.identityFiles.length ? got.identityFiles : DEFAULT_IDS,
        };
        expect({ host, ...ours }).toEqual({ host, ...want });
      }
    });
  }
});
