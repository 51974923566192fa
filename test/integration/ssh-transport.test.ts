import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { TransportError } from '../../src/errors.js';
import type { Host } from '../../src/playbook/types.js';
import { SshTransport, sshTransportOptions } from '../../src/transport/ssh.js';
import { Secrets } from '../../src/util/secrets.js';
import { killIfAlive, requireBinary, startProcess, waitFor as waitForServer } from './helpers/process.js';
import { shellWaitForFile, waitFor } from '../helpers/wait.js';
import { fleetOptions, hasSshd, loopbacks, startSshFleet, type SshFleet } from './helpers/sshd.js';

const host = (address: string, extra: Partial<Host> = {}): Host => ({ name: `h-${address}`, address, vars: {}, labels: {}, ...extra });

/** PIDs of processes whose command line contains `needle` (to prove a killed command is really gone). */
function pidsWith(needle: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const state = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]?.[0];
      if (cmd.includes(needle) && state !== 'Z') out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

// sudo (Debian package `sudo`) for the sudo: true tests; CI=true: missing is a failure.
const hasSudo = hasSshd() && requireBinary('/usr/bin/sudo', 'apt-get install -y sudo');

describe.skipIf(!hasSshd())('ssh transport against a real sshd', () => {
  let fleet: SshFleet;
  const transports: SshTransport[] = [];
  const logs: string[] = [];

  function transport(options: Record<string, unknown> = {}, env: Record<string, string> = {}): SshTransport {
    const t = new SshTransport(fleetOptions(fleet, options), {
      dir: fleet.dir,
      secrets: new Secrets(fleet.dir, env),
      log: (h, line) => logs.push(`${h.name}: ${line}`),
    });
    transports.push(t);
    return t;
  }

  beforeAll(async () => {
    // 127.0.0.7 as a bastion forbids forwarding: proves that jumpHost really goes through the bastion.
    fleet = await startSshFleet(loopbacks(2, 9), { extraConfig: ['Match LocalAddress 127.0.0.7', '  AllowTcpForwarding no'] });
  }, 30_000);
  afterAll(async () => {
    await Promise.all(transports.map((t) => t.close()));
    await fleet?.stop();
  });

  test('runs a command: exit code, stdout and stderr apart, env exported, one connection reused', async () => {
    const t = transport();
    const h = host('127.0.0.2');
    const a = await t.exec(h, 'echo "$SSH_CONNECTION"; echo "v=$GRAYWAVE_VERSION"; echo oops >&2; exit 3', { env: { GRAYWAVE_VERSION: "1.2 'x'" } });
    expect(a.code).toBe(3);
    expect(a.timedOut).toBe(false);
    expect(a.stdout).toContain("v=1.2 'x'");
    expect(a.stderr).toBe('oops\n'); // the PID line used for kills never reaches the caller
    const b = await t.exec(h, 'echo "$SSH_CONNECTION"');
    // Same client port on the server side: the second step reused the first step's connection.
    expect(b.stdout.split(' ').slice(0, 2)).toEqual(a.stdout.split('\n')[0]!.split(' ').slice(0, 2));
    expect(b.stdout).toContain(`127.0.0.2 ${fleet.port}`);
    await t.release(h);
    const c = await t.exec(h, 'echo "$SSH_CONNECTION"');
    expect(c.stdout.split(' ')[1]).not.toBe(b.stdout.split(' ')[1]); // released: a new connection
  });

  test('stdin input is fed to the command', async () => {
    const r = await transport().exec(host('127.0.0.3'), 'tr a-z A-Z', { input: 'hello\n' });
    expect(r).toMatchObject({ code: 0, stdout: 'HELLO\n' });
  });

  test('output streams as it comes, before the command ends', async () => {
    const chunks: string[] = [];
    const go = join(fleet.dir, `stream-go-${process.pid}`);
    // The command cannot end before the test lets it: `first` must arrive while it still runs.
    const running = transport().exec(host('127.0.0.3'), `echo first; ${shellWaitForFile(go, 0.02)}; echo second >&2`, {
      onOutput: (text, stream) => chunks.push(`${stream}:${text}`),
    });
    try {
      await waitFor(() => chunks.some((c) => c.includes('stdout:first')), 'the first line while the command runs', { timeoutMs: 15_000 });
      expect(chunks.some((c) => c.includes('second'))).toBe(false);
    } finally {
      writeFileSync(go, '');
    }
    const r = await running;
    expect(r.code).toBe(0);
    expect(chunks).toContain('stderr:second\n');
  });

  test('a signal death is reported as such, not as an exit code', async () => {
    const r = await transport().exec(host('127.0.0.3'), 'kill -TERM $$');
    expect(r).toMatchObject({ code: null, signal: 'SIGTERM', timedOut: false });
  });

  test('an exit status above 128 stays an exit status; the remote shell and a session of its own agree', async () => {
    const t = transport();
    const h = host('127.0.0.3');
    for (const [command, want] of [
      ['exit 130', { code: 130, signal: undefined }],
      ['exit 143', { code: 143, signal: undefined }],
      ['sleep 0.2; exit 137', { code: 137, signal: undefined }],
      ['kill -TERM $$', { code: null, signal: 'SIGTERM' }],
      ['kill -KILL $$', { code: null, signal: 'SIGKILL' }],
      ['exit 200', { code: 200, signal: undefined }],
    ] as const) {
      const inShell = await t.exec(h, command);
      const inSession = await t.exec(h, command, { input: '' }); // stdin input: a session of its own
      expect({ command, code: inShell.code, signal: inShell.signal }).toEqual({ command, ...want });
      expect({ command, code: inSession.code, signal: inSession.signal }).toEqual({ command, ...want });
    }
  });

  test('timeout kills the whole remote process group and reports timedOut', async () => {
    const marker = `sleep 31.${process.pid}`;
    const start = Date.now();
    const r = await transport().exec(host('127.0.0.4'), `${marker} & ${marker}; echo never`, { timeoutMs: 600 });
    // A generous bound: it returned at its timeout, not when the 31 s command would have ended.
    expect(Date.now() - start).toBeLessThan(20_000);
    expect(r).toMatchObject({ code: null, signal: 'SIGKILL', timedOut: true });
    expect(r.stdout).not.toContain('never');
    // The background sleep was in the same group: it must be gone too.
    await expect.poll(() => pidsWith(marker), { timeout: 10_000 }).toEqual([]);
  });

  test('abort signal kills the remote command', async () => {
    const marker = `sleep 32.${process.pid}`;
    const ac = new AbortController();
    const running = transport().exec(host('127.0.0.4'), marker, { signal: ac.signal });
    await waitFor(() => pidsWith(marker).length > 0, 'the command to run on the host', { timeoutMs: 15_000 });
    ac.abort();
    const r = await running;
    expect(r).toMatchObject({ code: null, signal: 'SIGKILL', timedOut: false });
    await expect.poll(() => pidsWith(marker), { timeout: 10_000 }).toEqual([]);
  });

  test('an abort that comes while the host connection and its shell are still starting kills the command too', async () => {
    const marker = `sleep 34.${process.pid}`;
    const ac = new AbortController();
    const start = Date.now();
    const running = transport().exec(host('127.0.0.4'), marker, { signal: ac.signal }); // a new transport: connects first
    ac.abort();
    const r = await running;
    expect(r).toMatchObject({ code: null, signal: 'SIGKILL', timedOut: false });
    expect(Date.now() - start).toBeLessThan(20_000); // generous: not the 34 s the command would take
    await expect.poll(() => pidsWith(marker), { timeout: 10_000 }).toEqual([]);
  });

  test.skipIf(!hasSudo)('sudo: true runs through sudo -n, and a timeout still kills it', async () => {
    const t = transport({ sudo: true });
    const r = await t.exec(host('127.0.0.5'), 'echo "sudo_user=$SUDO_USER uid=$(id -u) v=$V"', { env: { V: 'x y' } });
    expect(r).toMatchObject({ code: 0, stdout: 'sudo_user=root uid=0 v=x y\n' });
    const plain = await transport().exec(host('127.0.0.5'), 'echo "sudo_user=${SUDO_USER:-none}"');
    expect(plain.stdout).toBe('sudo_user=none\n');
    const marker = `sleep 33.${process.pid}`;
    const k = await t.exec(host('127.0.0.5'), marker, { timeoutMs: 500 });
    expect(k.timedOut).toBe(true);
    await expect.poll(() => pidsWith(marker), { timeout: 10_000 }).toEqual([]);
  });

  test('upload copies a file by SFTP', async () => {
    const src = join(fleet.dir, 'payload.txt');
    writeFileSync(src, 'payload ' + 'x'.repeat(200_000));
    const dst = join(fleet.dir, 'uploaded.txt');
    await transport().upload(host('127.0.0.6'), src, dst);
    expect(readFileSync(dst, 'utf8')).toBe(readFileSync(src, 'utf8'));
  });

  test('a changed host key is refused with a clear message; strictHostKeyChecking false accepts it', async () => {
    const kh = join(fleet.dir, 'kh-changed');
    writeFileSync(kh, `[127.0.0.6]:${fleet.port} ${fleet.otherHostKeyPub}\n`);
    const err = await transport({ knownHostsFile: kh })
      .exec(host('127.0.0.6'), 'true')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as Error).message).toMatch(/HOST KEY CHANGED for \[127\.0\.0\.6\]:\d+/);
    expect((err as Error).message).toContain(`${kh}:1`);
    expect((err as TransportError).host).toBe('h-127.0.0.6');
    const ok = await transport({ knownHostsFile: kh, strictHostKeyChecking: false }).exec(host('127.0.0.6'), 'echo ok');
    expect(ok.stdout).toBe('ok\n');
    expect(logs.some((l) => l.includes('HOST KEY CHANGED') && l.includes('accepted'))).toBe(true);
  });

  test('an unknown host key is refused under strict checking', async () => {
    const kh = join(fleet.dir, 'kh-empty');
    writeFileSync(kh, `[127.0.0.6]:${fleet.port} ${fleet.hostKeyPub}\n`); // knows .6, not .7
    const err = await transport({ knownHostsFile: kh })
      .exec(host('127.0.0.7'), 'true')
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/host key of \[127\.0\.0\.7\]:\d+ is unknown \(ssh-ed25519 SHA256:/);
    expect((err as Error).message).toContain('ssh-keyscan');
  });

  test('hashed known_hosts entries (ssh-keygen -H) are understood', async () => {
    const kh = join(fleet.dir, 'kh-hashed');
    writeFileSync(kh, `[127.0.0.7]:${fleet.port} ${fleet.hostKeyPub}\n`);
    execFileSync('/usr/bin/ssh-keygen', ['-q', '-H', '-f', kh], { stdio: 'ignore' });
    expect(readFileSync(kh, 'utf8')).toMatch(/^\|1\|/);
    const r = await transport({ knownHostsFile: kh }).exec(host('127.0.0.7'), 'echo hashed');
    expect(r.stdout).toBe('hashed\n');
  });

  test('a key the host does not accept is refused with a clear message', async () => {
    const err = await transport({ identityFile: fleet.strangerKey })
      .exec(host('127.0.0.7'), 'true')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as Error).message).toMatch(/ssh root@127\.0\.0\.7:\d+.*authentication refused for user root \(tried key .*stranger_key\)/);
    expect((err as Error).message).toContain('authorized_keys');
  });

  test('an encrypted key needs its passphrase from an env var; the passphrase never shows', async () => {
    const missing = await transport({ identityFile: fleet.encryptedKey })
      .exec(host('127.0.0.8'), 'true')
      .catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/is encrypted: set transport.passphrase: \{env: NAME\}/);
    const wrong = await transport({ identityFile: fleet.encryptedKey, passphrase: { env: 'GW_PASS' } }, { GW_PASS: 'not it' })
      .exec(host('127.0.0.8'), 'true')
      .catch((e: unknown) => e);
    expect((wrong as Error).message).toMatch(/cannot use identity file .*encrypted_key/);
    expect((wrong as Error).message).not.toContain('not it');
    const r = await transport({ identityFile: fleet.encryptedKey, passphrase: { env: 'GW_PASS' } }, { GW_PASS: fleet.passphrase }).exec(
      host('127.0.0.8'),
      'echo in',
    );
    expect(r.stdout).toBe('in\n');
  });

  test('a key is parsed and decrypted once for the whole fleet, not once per host (bcrypt costs ~0.1-0.5 s a time)', async () => {
    const ssh2 = createRequire(import.meta.url)('ssh2') as typeof import('ssh2');
    const parse = vi.spyOn(ssh2.utils, 'parseKey');
    try {
      const t = transport({ identityFile: fleet.encryptedKey, passphrase: { env: 'GW_PASS' } }, { GW_PASS: fleet.passphrase });
      const rs = await Promise.all(['127.0.0.2', '127.0.0.3', '127.0.0.4'].map((a) => t.exec(host(a), 'echo "$SSH_CONNECTION"')));
      expect(rs.map((r) => r.stdout.split(' ')[2])).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
      expect(parse.mock.calls.filter(([, passphrase]) => passphrase !== undefined)).toHaveLength(1);
    } finally {
      parse.mockRestore();
    }
  });

  test('~/.ssh/config Host entries (here from an Included file) supply HostName, User, Port and IdentityFile; unsupported lines are logged once', async () => {
    const cfg = join(fleet.dir, 'ssh_config');
    mkdirSync(join(fleet.dir, 'ssh_config.d'), { recursive: true });
    writeFileSync(cfg, `Include ${fleet.dir}/ssh_config.d/*.conf\n\nHost *\n  Port 1\n`);
    writeFileSync(
      join(fleet.dir, 'ssh_config.d', 'web.conf'),
      `Host web-*\n  HostName 127.0.0.8\n  Port ${fleet.port}\n  User root\n  IdentityFile ${fleet.clientKey}\n  Ciphers aes128-ctr\n`,
      { mode: 0o644 },
    );
    const logged: string[] = [];
    const t = new SshTransport(sshTransportOptions.parse({ knownHostsFile: fleet.knownHosts, configFile: cfg }), {
      dir: fleet.dir,
      secrets: new Secrets(fleet.dir, {}),
      log: (h, line) => logged.push(`${h.name} ${line}`),
    });
    transports.push(t);
    const r = await t.exec(host('web-01'), 'echo "$SSH_CONNECTION"; id -un');
    expect(r.stdout).toMatch(new RegExp(`127\\.0\\.0\\.8 ${fleet.port}\\nroot\\n$`));
    await t.exec(host('web-01'), 'true');
    expect(logged.filter((l) => l.includes('Ciphers'))).toEqual([
      `h-web-01 warning: ssh config ${join(fleet.dir, 'ssh_config.d', 'web.conf')}:6: Ciphers aes128-ctr changes how OpenSSH connects, but graywave does not implement it and ignores it for this host`,
    ]);
    // The playbook wins over the config: a wrong port given in the playbook is used (and fails).
    const t2 = new SshTransport(sshTransportOptions.parse({ knownHostsFile: fleet.knownHosts, configFile: cfg, port: 1, connectTimeout: '2s' }), {
      dir: fleet.dir,
      secrets: new Secrets(fleet.dir, {}),
    });
    transports.push(t2);
    await expect(t2.exec(host('web-01'), 'true')).rejects.toThrow(/ssh root@127\.0\.0\.8:1 \(host h-web-01\): connection refused/);
  });

  test('jumpHost: reaches the host through a bastion; an unreachable bastion fails naming it', async () => {
    const t = transport({ jumpHost: `root@127.0.0.9:${fleet.port}` });
    const r = await t.exec(host('127.0.0.8'), 'echo "$SSH_CONNECTION"');
    expect(r.stdout).toContain(`127.0.0.8 ${fleet.port}`);
    const forbidden = transport({ jumpHost: `root@127.0.0.7:${fleet.port}` });
    await expect(forbidden.exec(host('127.0.0.8'), 'true')).rejects.toThrow(/ssh root@127\.0\.0\.7:\d+.*: cannot forward to 127\.0\.0\.8:\d+/);
    const bad = transport({ jumpHost: `root@127.0.0.9:1`, connectTimeout: '2s' });
    await expect(bad.exec(host('127.0.0.8'), 'true')).rejects.toThrow(/jump host: ssh root@127\.0\.0\.9:1 .*connection refused/);
  });

  test('a connection killed mid-command fails that command; the next one reconnects', async () => {
    const t = transport();
    const h = host('127.0.0.9');
    await t.exec(h, 'true'); // connection open
    const server = fleet.serverFor('127.0.0.9');
    const marker = `sleep 35.${process.pid}`;
    const running = t.exec(h, `${marker}; echo done`);
    await waitFor(() => pidsWith(marker).length > 0, 'the command to run on the host', { timeoutMs: 15_000 });
    // Kill the sshd processes serving the open sessions (children of our own listener, by PID).
    for (const pid of fleet.sessionPids(server)) killIfAlive(pid); // a session may end on its own meanwhile
    const err = await running.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as Error).message).toMatch(/connection lost while the command ran/);
    const again = await t.exec(h, 'echo back');
    expect(again).toMatchObject({ code: 0, stdout: 'back\n' });
    for (const pid of pidsWith(marker)) killIfAlive(pid); // the orphaned sleep of the killed session
  });

  test('a connection dropped between steps is reopened once, transparently', async () => {
    const t = transport();
    const h = host('127.0.0.9');
    await t.exec(h, 'true');
    const server = fleet.serverFor('127.0.0.9');
    for (const pid of fleet.sessionPids(server)) killIfAlive(pid); // a session may end on its own meanwhile
    await waitFor(() => fleet.sessionPids(server).length === 0, 'the host side of the connection to be gone');
    const r = await t.exec(h, 'echo reopened');
    expect(r.stdout).toBe('reopened\n');
  });

  test('a connection dropped right before a step, not yet noticed when the step starts, is reopened once too', async () => {
    const t = transport();
    const h = host('127.0.0.9');
    const ran = join(fleet.dir, `ran-${process.pid}`);
    for (let i = 1; i <= 3; i++) {
      await t.exec(h, 'true'); // the host's shell is up and idle
      for (const pid of fleet.sessionPids(fleet.serverFor('127.0.0.9'))) killIfAlive(pid);
      // No pause: the command goes into the dead connection's shell before the drop is seen. It had not started, so
      // it runs once on a new connection (and not twice: the host itself tells whether it had started).
      const r = await t.exec(h, `echo x >> ${ran}; echo reopened`);
      expect(r).toMatchObject({ code: 0, stdout: 'reopened\n' });
      expect(readFileSync(ran, 'utf8')).toBe('x\n'.repeat(i));
    }
    expect(logs.some((l) => l.includes('h-127.0.0.9') && l.includes('the command had not started'))).toBe(true);
    // A command that started, then took the connection down (its sshd) before its start marker may have come back:
    // the host's record says it started, so the step fails and the command is not run a second time.
    const once = join(fleet.dir, `once-${process.pid}`);
    const err = await t.exec(h, `echo x >> ${once}; kill -KILL $(cut -d' ' -f4 /proc/$PPID/stat); sleep 5`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as Error).message).toMatch(/connection lost while the command ran/);
    expect(readFileSync(once, 'utf8')).toBe('x\n');
    expect(await t.exec(h, 'echo back')).toMatchObject({ code: 0, stdout: 'back\n' });
  });

  test('steps run one after another in one remote shell: one process starts them all, and nothing leaks between them', async () => {
    const t = transport();
    const h = host('127.0.0.2');
    const a = await t.exec(h, 'echo "$PPID"; X=1; cd /; exit 4');
    const b = await t.exec(h, 'echo "$PPID"; echo "x=${X:-unset} pwd=$PWD"');
    expect(a.code).toBe(4);
    const [ppidA] = a.stdout.split('\n');
    const [ppidB, rest] = b.stdout.split('\n');
    expect(ppidB).toBe(ppidA); // the same driver started both commands (a session per command has a new parent each time)
    expect(rest).not.toContain('x=1');
    expect(rest).not.toBe('x=unset pwd=/'); // each command starts fresh in the login directory
    // The shell is gone with the host's connection: a released host starts a new one.
    await t.release(h);
    const c = await t.exec(h, 'echo "$PPID"');
    expect(c.stdout.trim()).not.toBe(ppidA);
  });

  test('output of a background process left by one step never shows up in the next step', async () => {
    const t = transport();
    const h = host('127.0.0.3');
    const late = join(fleet.dir, `late-${process.pid}`);
    const next = join(fleet.dir, `next-${process.pid}`);
    const wait = (f: string) => shellWaitForFile(f, 0.02);
    // The background processes print once the next step runs; that step ends only after their output was seen.
    const a = await t.exec(h, `(${wait(late)}; echo late-out; echo late-err >&2) >&- 2>&- & (${wait(late)}; echo late-out2; echo late-err2 >&2) & echo now`);
    expect(a.stdout).toBe('now\n');
    const running = t.exec(h, `touch ${late}; ${wait(next)}; echo next`);
    try {
      await waitFor(() => logs.some((l) => l.includes('late-out2') && l.includes('outside any command')), 'the late output in the host log', {
        timeoutMs: 15_000,
      });
    } finally {
      writeFileSync(next, '');
    }
    const b = await running;
    expect(b).toMatchObject({ code: 0, stdout: 'next\n', stderr: '' });
  });

  test('commands on a busy host run beside the shell in sessions of their own; output cut into any chunks stays intact', async () => {
    const t = transport();
    const h = host('127.0.0.4');
    const big = `head -c 300000 /dev/zero | tr '\\0' x; printf '\\036'; echo; echo tail >&2`;
    const go = join(fleet.dir, `busy-go-${process.pid}`);
    // `slow` holds the host's shell until the other two are done: they can only have run beside it.
    const slowRun = t.exec(h, `${shellWaitForFile(go, 0.02)}; echo slow`);
    let fast, large;
    try {
      [fast, large] = await Promise.all([t.exec(h, 'echo fast; exit 7'), t.exec(h, big)]);
    } finally {
      writeFileSync(go, '');
    }
    const slow = await slowRun;
    expect(slow).toMatchObject({ code: 0, stdout: 'slow\n' });
    expect(fast).toMatchObject({ code: 7, stdout: 'fast\n' });
    expect(large.code).toBe(0);
    expect(large.stdout.length).toBe(64 * 1024); // the kept tail
    expect(large.stdout.endsWith('x\x1e\n')).toBe(true);
    expect(large.stderr).toBe('tail\n');
  });

  test('a command that kills its own shell fails that step clearly; the next step gets a new shell', async () => {
    const t = transport();
    const h = host('127.0.0.5');
    const err = await t.exec(h, 'kill -KILL $PPID; sleep 1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as Error).message).toMatch(/remote shell ended while the command ran/);
    expect(await t.exec(h, 'echo again')).toMatchObject({ code: 0, stdout: 'again\n' });
  });

  test('address `local` runs on this machine without SSH', async () => {
    const r = await transport().exec(host('local'), 'echo "${SSH_CONNECTION:-no-ssh}"');
    expect(r.stdout).toBe(process.env.SSH_CONNECTION ? `${process.env.SSH_CONNECTION}\n` : 'no-ssh\n');
  });

  test('agent: keys from an ssh-agent socket (no identity file)', async () => {
    const sock = join(fleet.dir, 'agent.sock');
    const agent = startProcess('/usr/bin/ssh-agent', ['-D', '-a', sock], { dir: fleet.dir, name: 'ssh-agent' });
    try {
      await waitForServer(() => existsSync(sock), 'ssh-agent socket', { server: agent, timeoutMs: 10_000 });
      execFileSync('/usr/bin/ssh-add', ['-q', fleet.clientKey], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
      const t = transport({ identityFile: undefined, agent: sock });
      const r = await t.exec(host('127.0.0.3'), 'echo via-agent');
      expect(r.stdout).toBe('via-agent\n');
      // Only the agent holds an authorized key here (no identityFile; ~/.ssh keys are not in authorized_keys).
      const noAgent = transport({ identityFile: undefined, agent: true }, {});
      const saved = process.env.SSH_AUTH_SOCK;
      delete process.env.SSH_AUTH_SOCK;
      try {
        await expect(noAgent.exec(host('127.0.0.3'), 'true')).rejects.toThrow(/agent is true but SSH_AUTH_SOCK is not set/);
      } finally {
        if (saved !== undefined) process.env.SSH_AUTH_SOCK = saved;
      }
    } finally {
      await agent.stop();
    }
  });

  test('options are strict', () => {
    expect(() => sshTransportOptions.parse({ user: 'x', identity: 'y' })).toThrow(/identity/);
    expect(sshTransportOptions.parse({}).connectTimeout).toBe(10_000);
    expect(sshTransportOptions.parse({}).strictHostKeyChecking).toBe(true);
  });
});
