import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { jumpLoop, SshClientConfig, type SshCommandLine } from '../../src/transport/ssh-config.js';
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
const fixtures = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.conf'))
  .sort();
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

/** The command line a fixture's hosts are also looked up with: `# with: -p 2200 -l cli -J hop` (as ssh's -p, -l, -J). */
function withOf(text: string): { args: string[]; cli: SshCommandLine } | undefined {
  const m = /^# with: (.*)$/m.exec(text);
  if (!m) return undefined;
  const args = m[1]!.trim().split(/\s+/);
  const cli: SshCommandLine = {};
  for (let i = 0; i < args.length; i += 2) {
    const v = args[i + 1]!;
    if (args[i] === '-p') cli.port = Number(v);
    else if (args[i] === '-l') cli.user = v;
    else if (args[i] === '-J') cli.jump = v;
    else throw new Error(`# with: ${args[i]} is not -p, -l or -J`);
  }
  return { args, cli };
}

interface Oracle {
  hostname: string;
  user: string;
  port: number;
  proxyjump?: string;
  /** Every proxy command ssh executes for this host, in order: its own, then those of the jump hosts' ssh. */
  proxycommands: string[];
  identityfiles: string[];
  hostkeyalias?: string;
  userknownhostsfiles: string[];
  globalknownhostsfiles: string[];
}

const run = promisify(execFile);

/**
 * A stand-in `ssh` first on PATH: ssh runs the implicit ProxyCommand of a ProxyJump as `ssh … -W … HOP` when started
 * under the name `ssh`. It hands over to the real ssh (under the same name, so the chain goes on) only when the hop
 * itself goes through a proxy; a hop that would be connected to directly ends there: nothing reaches the network.
 */
function fakeSsh(): string {
  const bin = tempDir('fake-ssh');
  dirs.push(bin);
  writeFileSync(
    join(bin, 'ssh'),
    // GW_DEPTH: a guard against a chain that loops through Host blocks (OpenSSH itself would go on forever).
    `#!/bin/bash\nexport GW_DEPTH=$((GW_DEPTH+1)); [ $GW_DEPTH -lt 10 ] || exit 1\n` +
      `if ${SSH} -G "$@" 2>/dev/null | grep -qE '^(proxycommand|proxyjump) '; then exec -a ssh ${SSH} -o BatchMode=yes "$@" 2>>"$GW_SUBLOG"; fi\nexit 1\n`,
    { mode: 0o755 },
  );
  return bin;
}
let fakeBin: string | undefined;
let subRuns = 0;

async function oracle(file: string, home: string, host: string, cliArgs: string[]): Promise<Oracle> {
  const env = { ...process.env, HOME: home };
  const g = (await run(SSH, ['-G', '-F', file, ...cliArgs, host], { env, encoding: 'utf8' })).stdout;
  const fields = new Map<string, string[]>();
  for (const line of g.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp < 0) continue;
    const k = line.slice(0, sp);
    fields.set(k, [...(fields.get(k) ?? []), line.slice(sp + 1)]);
  }
  const one = (k: string) => fields.get(k)?.[0];
  // Expanded identity files and proxy commands: ssh -v, with a proxy that fails at once (never the network).
  const hasProxy = one('proxycommand') !== undefined || one('proxyjump') !== undefined;
  fakeBin ??= fakeSsh();
  const args = ['-v', '-F', file, '-o', 'BatchMode=yes', ...(hasProxy ? [] : ['-o', 'ProxyCommand=false']), ...cliArgs, host, 'true'];
  // The jump hosts' ssh (started by the stand-in) log into a file of their own, in the order they start.
  const sublog = join(fakeBin, `sub-${++subRuns}.log`);
  writeFileSync(sublog, '');
  // Started as `ssh` (spawn's argv0; execFile ignores it): ssh then names the jump's ssh `ssh`, found on PATH.
  const v = await new Promise<string>((res, rej) => {
    const child = spawn(SSH, args, {
      env: { ...env, GW_SUBLOG: sublog, PATH: `${fakeBin}:${process.env.PATH}` },
      argv0: 'ssh',
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`ssh -v ${args.join(' ')} did not end within 40 s: ${err.slice(-500)}`));
    }, 40_000);
    child.on('close', () => (clearTimeout(timer), res(err)));
  });
  const ids = [...v.matchAll(/^debug1: identity file (.*) type -?\d+\r?$/gm)].map((m) => m[1]!).filter((f) => !f.endsWith('-cert'));
  const cmds = [...(v + readFileSync(sublog, 'utf8')).matchAll(/^debug1: Executing proxy command: exec (.*?)\r?$/gm)].map((m) => m[1]!);
  const tilde = (f: string) => (f.startsWith('~/') ? join(userInfo().homedir, f.slice(2)) : f);
  const files = (k: string) => (one(k) === 'none' ? [] : one(k)!.split(' ').map(tilde));
  return {
    hostname: one('hostname')!,
    user: one('user')!,
    port: Number(one('port')),
    proxyjump: one('proxyjump'),
    proxycommands: hasProxy ? cmds : [],
    identityfiles: ids,
    hostkeyalias: one('hostkeyalias'),
    userknownhostsfiles: files('userknownhostsfile'),
    globalknownhostsfiles: files('globalknownhostsfile'),
  };
}

const DEFAULT_IDS = ['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk', 'id_xmss', 'id_dsa'].map((f) => join(userInfo().homedir, '.ssh', f));

/**
 * The proxy commands OpenSSH runs to reach `host`, from our lookups: a ProxyJump becomes the implicit
 * `ssh [-l U] [-p P] [-J EXTRA] -F FILE -v -W '[%h]:%p' HOP`, and that ssh resolves HOP with that command line
 * (so the hop's own ProxyJump or ProxyCommand is used only when no -J is left); a ProxyCommand ends the chain.
 */
function proxyChain(cfg: SshClientConfig, file: string, host: string, cli: SshCommandLine, depth = 0): string[] {
  if (depth === 10) return []; // where the stand-in ssh stops a chain that loops (GW_DEPTH)
  const e = cfg.lookup(host, cli);
  if (e.jump && jumpLoop(e, host)) return []; // ssh stops: "jumphost loop via …"
  if (e.jump) {
    const j = e.jump;
    const h = e.hostName ?? (isIP(host) ? host : host.toLowerCase());
    const line = `ssh${j.user !== undefined ? ` -l ${j.user}` : ''}${j.port !== undefined ? ` -p ${j.port}` : ''}${j.extra !== undefined ? ` -J ${j.extra}` : ''} -F ${file} -v -W '[${h}]:${e.port ?? 22}' ${j.host}`;
    return [line, ...proxyChain(cfg, file, j.host, { user: j.user, port: j.port, jump: j.extra }, depth + 1)];
  }
  return e.proxyCommand !== undefined ? [e.proxyCommand] : [];
}

describe.skipIf(!hasSsh)('ssh_config read as `ssh -G` reads it', () => {
  test('the corpus has at least 25 configs', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(25);
  });

  for (const fixture of fixtures) {
    test(fixture, async () => {
      const { file, home } = prepare(fixture);
      const cfg = SshClientConfig.load(file, { envHome: home, checkPerm: false });
      const text = readFileSync(file, 'utf8');
      const runs: { host: string; args: string[]; cli: SshCommandLine }[] = [];
      const w = withOf(text);
      for (const host of hostsOf(text)) {
        runs.push({ host, args: [], cli: {} });
        if (w) runs.push({ host, ...w });
      }
      const oracles = await Promise.all(runs.map((r) => oracle(file, home, r.host, r.args)));
      for (const [i, { host, args, cli }] of runs.entries()) {
        const want = oracles[i]!;
        const got = cfg.lookup(host, cli);
        const ours: Oracle = {
          hostname: got.hostName ?? (isIP(host) ? host : host.toLowerCase()),
          user: got.user ?? userInfo().username,
          port: got.port ?? 22,
          proxyjump: got.proxyJump,
          proxycommands: proxyChain(cfg, file, host, cli),
          identityfiles: got.identityFiles.length ? got.identityFiles : DEFAULT_IDS,
          hostkeyalias: got.hostKeyAlias,
          userknownhostsfiles: got.userKnownHostsFiles ?? ['known_hosts', 'known_hosts2'].map((f) => join(userInfo().homedir, '.ssh', f)),
          globalknownhostsfiles: got.globalKnownHostsFiles ?? ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'],
        };
        expect({ host, args, ...ours }).toEqual({ host, args, ...want });
      }
    });
  }
});
