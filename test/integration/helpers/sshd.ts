import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, portOpen, removeDir, requireBinary, startProcess, tempDir, waitFor, type Server } from './process.js';

/**
 * Real OpenSSH servers for the integration tests: one sshd process per group of up to 16 loopback addresses
 * (sshd's compile-time limit on listen sockets), all sharing one port, one host key and one authorized key,
 * so that each address stands for a separate host. Start once per test file.
 */

export const SSHD = '/usr/sbin/sshd';
export const hasSshd = (): boolean => requireBinary(SSHD, 'apt-get install -y openssh-server') && requireBinary('/usr/bin/ssh-keygen', 'apt-get install -y openssh-client');

export interface SshFleet {
  dir: string;
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
function descendants(root: number): { pid: number; comm: string }[] {
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

export async function startSshFleet(addresses: string[], opts: { extraConfig?: string[] } = {}): Promise<SshFleet> {
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
  const hostKeyPub = pub('host_ed25519_key.pub');
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, addresses.map((a) => `[${a}]:${port} ${hostKeyPub}`).join('\n') + '\n');

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
          'UsePAM no',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'PubkeyAuthentication yes',
          'PermitRootLogin prohibit-password',
          'StrictModes no', // keys live under /tmp, which is world-writable
          'MaxStartups 100:30:200',
          'MaxSessions 50',
          'Subsystem sftp internal-sftp',
          // bash sources ~/.bashrc for commands run by sshd unless SHLVL says it is nested. This machine's root
          // .bashrc runs `pyenv init` (about 1 s per command under load), which is the host's cost, not ours.
          'SetEnv SHLVL=1',
          'LogLevel VERBOSE',
          ...(opts.extraConfig ?? []),
        ].join('\n') + '\n',
      );
      const server = startProcess(SSHD, ['-D', '-e', '-f', conf], { dir, name: `sshd-${i}` });
      servers.push(server);
      for (const a of group) owner.set(a, server);
      await waitFor(async () => (await Promise.all(group.map((a) => portOpen(a, port)))).every(Boolean), `sshd ${i} on ${group[0]}..:${port}`, { server, timeoutMs: 15_000 });
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    throw err;
  }
  return {
    dir,
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
    serverFor: (a) => owner.get(a) ?? (() => { throw new Error(`no sshd for ${a}`); })(),
    sessionPids: (server) => descendants(server.pid).filter((p) => p.comm === 'sshd').map((p) => p.pid),
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

/** 127.0.0.<from> … 127.0.0.<to>. */
export function loopbacks(from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => `127.0.0.${from + i}`);
}
