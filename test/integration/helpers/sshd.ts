import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { sshTransportOptions, type SshTransportOptions } from '../../../src/transport/ssh.js';
import { freePort, portOpen, removeDir, requireBinary, startProcess, tempDir, waitFor, type Server } from './process.js';

/**
 * Real OpenSSH servers for the integration tests: one sshd process per group of up to 16 loopback addresses
 * (sshd's compile-time limit on listen sockets), all sharing one port, one host key and one authorized key,
 * so that each address stands for a separate host. Start once per test file.
 */

export const SSHD = '/usr/sbin/sshd';
export const hasSshd = (): boolean =>
  requireBinary(SSHD, 'apt-get install -y openssh-server') && requireBinary('/usr/bin/ssh-keygen', 'apt-get install -y openssh-client');

export interface SshFleet {
  dir: string;
  /** HOME of root's sessions (its ~/.bashrc costs RC_SECONDS). */
  home: string;
  /** How many times root's ~/.bashrc has run so far. */
  rcRuns(): number;
  port: number;
  addresses: string[];
  /** Private key whose public half is authorized (no passphrase). */
  clientKey: string;
  /** Authorized too, encrypted with `passphrase`. */
  encryptedKey: string;
  passphrase: string;
  /** A valid key that is NOT authorized. */
  strangerKey: string;
  /** known_hosts with the real host key for every address (`[addr]:port` form). */
  knownHosts: string;
  /** The public host key line (`ssh-ed25519 AAAA…`). */
  hostKeyPub: string;
  /** A different host key, for mismatch tests. */
  otherHostKeyPub: string;
  servers: Server[];
  /** The listener serving an address. */
  serverFor(address: string): Server;
  /** PIDs of the sshd processes that serve open connections of a listener (its descendants named sshd). */
  sessionPids(server: Server): number[];
  stop(): Promise<void>;
}

function keygen(file: string, passphrase = ''): void {
  execFileSync('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'graywave-test', '-f', file]);
}

/** Descendants of `root` as read from /proc (PID, comm). */
export function descendants(root: number): { pid: number; comm: string }[] {
  const procs: { pid: number; ppid: number; comm: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      if (fields[0] === 'Z') continue;
      procs.push({ pid: Number(name), ppid: Number(fields[1]), comm });
    } catch {
      /* gone */
    }
  }
  const out: { pid: number; comm: string }[] = [];
  const walk = (p: number) => {
    for (const c of procs.filter((x) => x.ppid === p)) {
      out.push({ pid: c.pid, comm: c.comm });
      walk(c.pid);
    }
  };
  walk(root);
  return out;
}

/** What a test user's rc file costs, as on real hosts (pyenv, nvm, conda, profile scripts: 100–500 ms are common). */
export const RC_SECONDS = 0.15;

/**
 * An rc file that costs time like a real one and counts its runs (one line per run in `<home>/.rc-runs`), so a
 * test can tell how often a host's login environment was paid.
 */
function rcFile(home: string, seconds: number): string {
  return `# a real host's rc file: tools that set up PATH (pyenv init, nvm, conda) take this long\necho x >> ${home}/.rc-runs\nsleep ${seconds}\nexport GW_FROM_RC=1\n`;
}

/** How many times the login rc file in `home` ran (it appends a line to .rc-runs each time); 0 before the first. */
function rcRuns(home: string): number {
  try {
    return readFileSync(join(home, '.rc-runs'), 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

/** Debian's default ~/.profile: a login bash reads it, and it reads ~/.bashrc. */
const PROFILE = 'if [ -n "$BASH_VERSION" ] && [ -f "$HOME/.bashrc" ]; then . "$HOME/.bashrc"; fi\nexport GW_FROM_PROFILE=1\n';

export interface FleetOptions {
  extraConfig?: string[];
  /**
   * false: no `Subsystem sftp` line, as on hardened hosts. `external`: OpenSSH's sftp-server program, started through
   * the login shell (Debian's default sshd_config). Default true: sshd's internal-sftp.
   */
  sftp?: boolean | 'external';
  /** Seconds the login user's ~/.bashrc takes. Default RC_SECONDS. */
  rcSeconds?: number;
  /**
   * false: `UsePAM no`. Default true: `UsePAM yes`, as Debian's and RHEL's sshd_config have it (PAM's account and
   * session modules run for every connection: about 20 ms more of the host's CPU per connection here).
   */
  pam?: boolean;
}

export async function startSshFleet(addresses: string[], opts: FleetOptions = {}): Promise<SshFleet> {
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation dir; sshd refuses to start without it
  const dir = tempDir('sshd');
  const port = await freePort();
  keygen(join(dir, 'host_ed25519_key'));
  keygen(join(dir, 'other_host_key'));
  keygen(join(dir, 'client_key'));
  keygen(join(dir, 'stranger_key'));
  const passphrase = 'correct horse battery';
  keygen(join(dir, 'encrypted_key'), passphrase);
  for (const k of ['client_key', 'stranger_key', 'encrypted_key']) chmodSync(join(dir, k), 0o600);
  const pub = (f: string) => readFileSync(join(dir, f), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  writeFileSync(join(dir, 'authorized_keys'), [pub('client_key.pub'), pub('encrypted_key.pub')].join('\n') + '\n');
  // sshd reads AuthorizedKeysFile as the user logging in: the test accounts (testUser) must reach it.
  chmodSync(dir, 0o711);
  chmodSync(join(dir, 'authorized_keys'), 0o644);
  const hostKeyPub = pub('host_ed25519_key.pub');
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, addresses.map((a) => `[${a}]:${port} ${hostKeyPub}`).join('\n') + '\n');

  // root's real home has this machine's own rc files (pyenv init: about 1 s under load), which would make the
  // tests' timing depend on the machine: root's sessions get a home of the fleet's own with an rc file that costs
  // RC_SECONDS, like a real host's login user (sshd applies SetEnv after setting HOME).
  const home = join(dir, 'home');
  mkdirSync(home);
  writeFileSync(join(home, '.bashrc'), rcFile(home, opts.rcSeconds ?? RC_SECONDS));
  writeFileSync(join(home, '.profile'), PROFILE);

  const servers: Server[] = [];
  const owner = new Map<string, Server>();
  try {
    for (let i = 0; i * 16 < addresses.length; i++) {
      const group = addresses.slice(i * 16, i * 16 + 16);
      const conf = join(dir, `sshd-${i}.conf`);
      writeFileSync(
        conf,
        [
          `Port ${port}`,
          ...group.map((a) => `ListenAddress ${a}`),
          `HostKey ${join(dir, 'host_ed25519_key')}`,
          `PidFile ${join(dir, `sshd-${i}.pid`)}`,
          `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
          opts.pam === false ? 'UsePAM no' : 'UsePAM yes',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'PubkeyAuthentication yes',
          'PermitRootLogin prohibit-password',
          'StrictModes no', // keys live under /tmp, which is world-writable
          'MaxStartups 100:30:200',
          'MaxSessions 50',
          ...(opts.sftp === false ? [] : [`Subsystem sftp ${opts.sftp === 'external' ? '/usr/lib/openssh/sftp-server' : 'internal-sftp'}`]),
          'LogLevel VERBOSE',
          ...(opts.extraConfig ?? []),
          'Match User root',
          `  SetEnv HOME=${home}`,
        ].join('\n') + '\n',
      );
      const server = startProcess(SSHD, ['-D', '-e', '-f', conf], { dir, name: `sshd-${i}` });
      servers.push(server);
      for (const a of group) owner.set(a, server);
      await waitFor(async () => (await Promise.all(group.map((a) => portOpen(a, port)))).every(Boolean), `sshd ${i} on ${group[0]}..:${port}`, {
        server,
        timeoutMs: 15_000,
      });
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    throw err;
  }
  return {
    dir,
    home,
    rcRuns: () => rcRuns(home),
    port,
    addresses,
    clientKey: join(dir, 'client_key'),
    encryptedKey: join(dir, 'encrypted_key'),
    passphrase,
    strangerKey: join(dir, 'stranger_key'),
    knownHosts,
    hostKeyPub,
    otherHostKeyPub: pub('other_host_key.pub'),
    servers,
    serverFor: (a) =>
      owner.get(a) ??
      (() => {
        throw new Error(`no sshd for ${a}`);
      })(),
    sessionPids: (server) =>
      descendants(server.pid)
        .filter((p) => p.comm === 'sshd')
        .map((p) => p.pid),
    async stop() {
      // Open sessions outlive the listener: kill them (by PID, descendants of our own listeners) first.
      for (const s of servers) {
        for (const p of descendants(s.pid).filter((x) => x.comm === 'sshd')) {
          try {
            process.kill(p.pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
      await Promise.all(servers.map((s) => s.stop()));
      removeDir(dir);
    },
  };
}

/** SSH transport options that log in to a fleet as root with its client key and known_hosts (`extra` on top). */
export function fleetOptions(fleet: SshFleet, extra: Record<string, unknown> = {}): SshTransportOptions {
  return sshTransportOptions.parse({
    user: 'root',
    port: fleet.port,
    identityFile: fleet.clientKey,
    knownHostsFile: fleet.knownHosts,
    configFile: false,
    ...extra,
  });
}

/** 127.0.0.<from> … 127.0.0.<to>. */
export function loopbacks(from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => `127.0.0.${from + i}`);
}

export interface TestUser {
  name: string;
  home: string;
  /** How many times the user's ~/.bashrc has run so far. */
  rcRuns(): number;
}

/**
 * A local user account for the tests (hosts whose login user is not root: another login shell, sudo with a
 * password). Created when missing (the tests run as root; CI installs nothing else for it) and kept: the same names
 * serve every run. Its ~/.bashrc costs RC_SECONDS; any key the fleets authorize logs in (AuthorizedKeysFile is the
 * fleet's). `sudo`: 'password' (sudo asks for `password`), 'tty' (sudoers `requiretty` too).
 */
export function testUser(name: string, opts: { shell?: string; password?: string; sudo?: 'password' | 'tty' } = {}): TestUser {
  const shell = opts.shell ?? '/bin/bash';
  const exists = (() => {
    try {
      execFileSync('/usr/bin/id', ['-u', name], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  if (!exists) {
    try {
      execFileSync('/usr/sbin/useradd', ['-m', '-s', shell, name], { stdio: 'pipe' });
    } catch (err) {
      // Another test file may have created it meanwhile.
      execFileSync('/usr/bin/id', ['-u', name], { stdio: 'ignore' });
      void err;
    }
  }
  execFileSync('/usr/sbin/usermod', ['-s', shell, name], { stdio: 'pipe' });
  const home = `/home/${name}`;
  mkdirSync(home, { recursive: true });
  for (const [f, text] of [
    ['.bashrc', rcFile(home, RC_SECONDS)],
    ['.profile', PROFILE],
    ['.zshenv', `echo x >> ${home}/.rc-runs\n`],
  ] as const) {
    writeFileSync(join(home, f), text);
  }
  execFileSync('/bin/chown', ['-R', `${name}:`, home]);
  // Usable without a password login: sshd wants an unlocked account (`*`-less); the password only matters to sudo.
  execFileSync('/usr/sbin/chpasswd', { input: `${name}:${opts.password ?? randomPassword()}\n` });
  const sudoers = `/etc/sudoers.d/graywave-test-${name}`;
  if (opts.sudo) {
    writeFileSync(sudoers, `${name} ALL=(ALL) ALL\n${opts.sudo === 'tty' ? `Defaults:${name} requiretty\n` : ''}`, { mode: 0o440 });
  }
  return {
    name,
    home,
    rcRuns: () => rcRuns(home),
  };
}

function randomPassword(): string {
  return `gw-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
}
