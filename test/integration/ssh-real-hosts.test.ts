import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Host } from '../../src/playbook/types.js';
import { SshTransport, sshTransportOptions } from '../../src/transport/ssh.js';
import { Secrets } from '../../src/util/secrets.js';
import { requireBinary } from './helpers/process.js';
import { hasSshd, loopbacks, RC_SECONDS, startSshFleet, testUser, type SshFleet, type TestUser } from './helpers/sshd.js';

/**
 * Hosts as they come: a login user whose rc file costs time, other login shells (dash, zsh), per-host users and
 * keys, two-hop ProxyJump and ProxyCommand, sudo with a password, and an sshd without the SFTP subsystem.
 * The users are real local accounts (created when missing; the tests run as root).
 */

const host = (address: string, extra: Partial<Host> = {}): Host => ({ name: `h-${address}`, address, vars: {}, labels: {}, ...extra });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const hasSudo = hasSshd() && requireBinary('/usr/bin/sudo', 'apt-get install -y sudo');
// zsh (Debian package `zsh`, installed by scripts/setup-test-env.sh); CI=true: missing is a failure.
const hasZsh = hasSshd() && requireBinary('/usr/bin/zsh', 'apt-get install -y zsh');
const hasNc = hasSshd() && requireBinary('/usr/bin/nc', 'apt-get install -y netcat-openbsd');

describe.skipIf(!hasSshd())('ssh on real-host shapes (real sshd, real accounts)', () => {
  let fleet: SshFleet;
  let bare: SshFleet; // no SFTP subsystem
  const transports: SshTransport[] = [];
  const logs: string[] = [];
  let users: Record<'bash' | 'dash' | 'sudo' | 'tty', TestUser>;
  const SUDO_PASSWORD = `pw-${process.pid}-s3cret`;

  function transport(options: Record<string, unknown> = {}, env: Record<string, string> = {}, on: SshFleet = fleet): SshTransport {
    const t = new SshTransport(
      sshTransportOptions.parse({ user: 'root', port: on.port, identityFile: on.clientKey, knownHostsFile: on.knownHosts, configFile: false, ...options }),
      { dir: on.dir, secrets: new Secrets(on.dir, env), log: (h, line) => logs.push(`${h.name}: ${line}`) },
    );
    transports.push(t);
    return t;
  }

  beforeAll(async () => {
    users = {
      bash: testUser('gw-test-bash'),
      dash: testUser('gw-test-dash', { shell: '/bin/sh' }),
      sudo: testUser('gw-test-sudo', { password: SUDO_PASSWORD, sudo: 'password' }),
      tty: testUser('gw-test-tty', { password: SUDO_PASSWORD, sudo: 'tty' }),
    };
    // 127.0.0.2 may forward only to 127.0.0.3, and 127.0.0.3 only to 127.0.0.4: a two-hop path is the only way.
    fleet = await startSshFleet(loopbacks(2, 9), {
      extraConfig: ['Match LocalAddress 127.0.0.2', `  PermitOpen 127.0.0.3:*`, 'Match LocalAddress 127.0.0.3', `  PermitOpen 127.0.0.4:*`],
    });
    bare = await startSshFleet(loopbacks(10, 11), { sftp: false });
  }, 60_000);
  afterAll(async () => {
    await Promise.all(transports.map((t) => t.close()));
    await fleet?.stop();
    await bare?.stop();
  });

  test('a slow rc file is paid once per connection, not per step; loginShell: true pays it on every step', async () => {
    const t = transport();
    const h = host('127.0.0.5');
    const before = fleet.rcRuns();
    await t.exec(h, 'true'); // connection, remote shell
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const r = await t.exec(h, 'echo "$GW_FROM_RC"');
      times.push(performance.now() - t0);
      // What the connection's login shell exported (PATH from pyenv, nvm …) reaches every step.
      expect(r).toMatchObject({ code: 0, stdout: '1\n' });
    }
    // The login shell of the connection's remote shell read it (once); no step did.
    expect(fleet.rcRuns() - before).toBeLessThanOrEqual(1);
    // A generous bound: a step costs far less than the rc file (it cost 120–550 ms per step before).
    expect(median(times)).toBeLessThan(RC_SECONDS * 1000);

    const login = transport({ loginShell: true });
    const lh = host('127.0.0.6');
    await login.exec(lh, 'true');
    const mid = fleet.rcRuns();
    for (let i = 0; i < 3; i++) {
      const r = await login.exec(lh, 'echo "$GW_FROM_PROFILE $GW_FROM_RC"');
      expect(r.stdout).toBe('1 1\n'); // ~/.profile, which reads ~/.bashrc, as a login bash does
    }
    expect(fleet.rcRuns() - mid).toBe(3);
    // The session path (a step with stdin) skips the rc file too, beyond the login shell sshd starts.
    const viaSession = fleet.rcRuns();
    const r = await t.exec(h, 'cat; echo "[$GW_FROM_RC]"', { input: 'in\n' });
    expect(r).toMatchObject({ code: 0, stdout: 'in\n[1]\n' });
    expect(fleet.rcRuns() - viaSession).toBe(1);
  });

  test('a host whose login shell is dash: exit status, env, stdin, signals and timeouts work the same', async () => {
    const t = transport({ user: users.dash.name });
    const h = host('127.0.0.7');
    const a = await t.exec(h, 'echo "$BASH_VERSION" | cut -c1; echo "v=$V"; echo err >&2; exit 4', { env: { V: "a 'b'" } });
    expect(a).toMatchObject({ code: 4, stdout: "5\nv=a 'b'\n", stderr: 'err\n' }); // steps run in bash
    expect((await t.exec(h, 'whoami')).stdout).toBe(`${users.dash.name}\n`);
    expect(await t.exec(h, 'cat', { input: 'x\ny' })).toMatchObject({ code: 0, stdout: 'x\ny' });
    expect(await t.exec(h, 'kill -TERM $$')).toMatchObject({ code: null, signal: 'SIGTERM' });
    const slow = await t.exec(h, 'sleep 30', { timeoutMs: 300 });
    expect(slow).toMatchObject({ code: null, timedOut: true });
    // The session path with its PID line, under dash.
    const s = await t.exec(h, 'echo "$0"; exit 3', { input: '' });
    expect(s).toMatchObject({ code: 3 });
  });

  test.skipIf(!hasZsh)('a host whose login shell is zsh works the same', async () => {
    const zsh = testUser('gw-test-zsh', { shell: '/usr/bin/zsh' });
    const t = transport({ user: zsh.name });
    const h = host('127.0.0.7');
    const a = await t.exec(h, 'echo "$BASH_VERSION" | cut -c1; echo "v=$V"; exit 5', { env: { V: 'x y' } });
    expect(a).toMatchObject({ code: 5, stdout: '5\nv=x y\n' });
    expect(await t.exec(h, 'cat; whoami', { input: 'in\n' })).toMatchObject({ code: 0, stdout: `in\n${zsh.name}\n` });
    const before = zsh.rcRuns();
    for (let i = 0; i < 5; i++) await t.exec(h, 'true');
    expect(zsh.rcRuns() - before).toBe(0); // ~/.zshenv is read by the connection's login shell only
  });

  test("per-host ssh: settings win over the playbook's transport (user, port, identity file)", async () => {
    // The transport's key is not authorized and its port is wrong: only the hosts' own settings can work.
    const t = transport({ identityFile: fleet.strangerKey, port: 1 });
    const own = { user: users.bash.name, port: fleet.port, identityFile: fleet.clientKey };
    const a = await t.exec(host('127.0.0.8', { ssh: own }), 'whoami; echo "$HOME"');
    expect(a).toMatchObject({ code: 0, stdout: `${users.bash.name}\n${users.bash.home}\n` });
    const b = await t.exec(host('127.0.0.9', { ssh: { ...own, user: 'root' } }), 'whoami');
    expect(b.stdout).toBe('root\n');
    await expect(t.exec(host('127.0.0.6', { ssh: { identityFile: fleet.clientKey } }), 'true')).rejects.toThrow(/127\.0\.0\.6:1 .*connection refused/);
  });

  test('two-hop ProxyJump, each hop through its own Host block (user, port, key); a per-host jumpHost; none', async () => {
    const config = join(fleet.dir, 'ssh_config_jump');
    writeFileSync(
      config,
      [
        'Host hop-one',
        '  HostName 127.0.0.2',
        `  Port ${fleet.port}`,
        `  User ${users.bash.name}`,
        `  IdentityFile ${fleet.clientKey}`,
        'Host hop-two',
        '  HostName 127.0.0.3',
        `  Port ${fleet.port}`,
        '  User root',
        `  IdentityFile ${fleet.clientKey}`,
        'Host target',
        '  HostName 127.0.0.4',
        '  ProxyJump hop-one,hop-two',
      ].join('\n') + '\n',
    );
    // The transport's own key is refused everywhere: every hop must use its Host block's key.
    const t = transport({ configFile: config, identityFile: undefined, agent: false, user: undefined, port: fleet.port });
    const logFrom = fleet.serverFor('127.0.0.2').log().length;
    const r = await t.exec(host('target', { ssh: { user: 'root', identityFile: fleet.clientKey } }), 'echo "$SSH_CONNECTION" | cut -d" " -f3');
    expect(r).toMatchObject({ code: 0, stdout: '127.0.0.4\n' });
    // hop-one was reached as its Host block's user (and 127.0.0.2 may only forward to hop-two).
    const log = fleet.serverFor('127.0.0.2').log().slice(logFrom);
    expect(log).toContain(`on 127.0.0.2 port ${fleet.port}`);
    expect(log).toMatch(new RegExp(`Accepted publickey for ${users.bash.name} `));

    // A playbook-level two-hop jumpHost (user@host:port each) reaches 127.0.0.4 too; one hop cannot (PermitOpen).
    const pb = transport({ jumpHost: `${users.bash.name}@127.0.0.2:${fleet.port},root@127.0.0.3:${fleet.port}` });
    expect((await pb.exec(host('127.0.0.4'), 'echo "$SSH_CONNECTION" | cut -d" " -f3')).stdout).toBe('127.0.0.4\n');
    const one = transport({ jumpHost: `root@127.0.0.2:${fleet.port}` });
    await expect(one.exec(host('127.0.0.4'), 'true')).rejects.toThrow(/cannot forward to 127\.0\.0\.4/);
    // A host's own jumpHost wins over the playbook's; `none` connects directly.
    const own = await one.exec(host('127.0.0.4', { name: 'own-jump', ssh: { jumpHost: `root@127.0.0.3:${fleet.port}` } }), 'echo ok');
    expect(own.stdout).toBe('ok\n');
    const direct = await one.exec(host('127.0.0.4', { name: 'direct', ssh: { jumpHost: 'none' } }), 'echo ok');
    expect(direct.stdout).toBe('ok\n');
  });

  test.skipIf(!hasNc)('ProxyCommand: SSH over the command’s stdin/stdout; `none` disables it', async () => {
    const mark = join(fleet.dir, 'proxy-used');
    const config = join(fleet.dir, 'ssh_config_proxy');
    writeFileSync(
      config,
      [
        'Host via-proxy',
        '  HostName 127.0.0.5',
        `  Port ${fleet.port}`,
        `  ProxyCommand sh -c 'echo %h:%p >> ${mark}; exec nc %h %p'`,
        'Host no-proxy',
        '  HostName 127.0.0.5',
        '  ProxyCommand none',
        '',
      ].join('\n'),
    );
    const t = transport({ configFile: config });
    const r = await t.exec(host('via-proxy'), 'echo "$SSH_CONNECTION" | cut -d" " -f3');
    expect(r).toMatchObject({ code: 0, stdout: '127.0.0.5\n' });
    expect(readFileSync(mark, 'utf8')).toBe(`127.0.0.5:${fleet.port}\n`);
    expect((await t.exec(host('no-proxy'), 'echo direct')).stdout).toBe('direct\n');
    expect(readFileSync(mark, 'utf8').split('\n').filter(Boolean)).toHaveLength(1);
    const broken = join(fleet.dir, 'ssh_config_proxy_broken');
    writeFileSync(broken, ['Host broken', '  HostName 127.0.0.5', '  ProxyCommand sh -c "echo no route >&2; exit 1"', ''].join('\n'));
    await expect(transport({ configFile: broken }).exec(host('broken'), 'true')).rejects.toThrow(/through ProxyCommand/);
  });

  test.skipIf(!hasNc)("ProxyCommand's %p and %r are the port and user the connection really uses (the playbook's win, as ssh -p/-l)", async () => {
    const mark = join(fleet.dir, 'proxy-port-used');
    const config = join(fleet.dir, 'ssh_config_proxy_port');
    // The Host block's Port is wrong: only the playbook's port (ssh -p) reaches sshd, through %p.
    writeFileSync(
      config,
      ['Host pp', '  HostName 127.0.0.5', '  Port 1', '  User nobody-here', `  ProxyCommand sh -c 'echo %h:%p:%r >> ${mark}; exec nc %h %p'`, ''].join('\n'),
    );
    const t = transport({ configFile: config, port: fleet.port, user: 'root' });
    const r = await t.exec(host('pp'), 'echo "$SSH_CONNECTION" | cut -d" " -f3,4; whoami');
    expect(r).toMatchObject({ code: 0, stdout: `127.0.0.5 ${fleet.port}\nroot\n` });
    expect(readFileSync(mark, 'utf8')).toBe(`127.0.0.5:${fleet.port}:root\n`);
    // A host's own port wins over the playbook's, and is what %p is.
    const own = transport({ configFile: config, port: 1, user: 'root' });
    expect((await own.exec(host('pp', { name: 'pp-own', port: fleet.port }), 'echo ok')).stdout).toBe('ok\n');
    expect(readFileSync(mark, 'utf8').split('\n').filter(Boolean)).toEqual([`127.0.0.5:${fleet.port}:root`, `127.0.0.5:${fleet.port}:root`]);
  });

  test.skipIf(!hasNc)('each jump host follows its own Host block: its own ProxyJump, and its ProxyCommand (OpenSSH’s chain)', async () => {
    const mark = join(fleet.dir, 'hop-one-proxy');
    const config = join(fleet.dir, 'ssh_config_chain');
    writeFileSync(
      config,
      [
        // target → ProxyJump hop-two; hop-two → its own ProxyJump hop-one; hop-one → its own ProxyCommand.
        'Host target',
        '  HostName 127.0.0.4',
        '  ProxyJump hop-two',
        'Host hop-two',
        '  HostName 127.0.0.3',
        `  Port ${fleet.port}`,
        '  User root',
        `  IdentityFile ${fleet.clientKey}`,
        '  ProxyJump hop-one',
        'Host hop-one',
        '  HostName 127.0.0.2',
        `  Port ${fleet.port}`,
        `  User ${users.bash.name}`,
        `  IdentityFile ${fleet.clientKey}`,
        `  ProxyCommand sh -c 'echo %h:%p:%r >> ${mark}; exec nc %h %p'`,
        // -J semantics: a hop before the last one is reached with `ssh -J`, so its own ProxyJump is not used.
        'Host via-list',
        '  HostName 127.0.0.4',
        '  ProxyJump hop-one,hop-two',
        'Host loopy',
        '  ProxyJump loopy:' + fleet.port,
        'Host loop-a',
        '  HostName 127.0.0.4',
        '  ProxyJump loop-a',
        '',
      ].join('\n'),
    );
    const t = transport({ configFile: config, identityFile: undefined, agent: false, user: undefined, port: fleet.port });
    const from2 = fleet.serverFor('127.0.0.2').log().length;
    const own = { user: 'root', identityFile: fleet.clientKey };
    const r = await t.exec(host('target', { ssh: own }), 'echo "$SSH_CONNECTION" | cut -d" " -f3');
    expect(r).toMatchObject({ code: 0, stdout: '127.0.0.4\n' });
    // hop-one was reached through its own ProxyCommand, as its own user; hop-two only through hop-one (PermitOpen).
    expect(readFileSync(mark, 'utf8')).toBe(`127.0.0.2:${fleet.port}:${users.bash.name}\n`);
    expect(fleet.serverFor('127.0.0.2').log().slice(from2)).toMatch(new RegExp(`Accepted publickey for ${users.bash.name} `));
    // hop-one,hop-two: hop-two is reached as `ssh -J hop-one hop-two` (the same route, whose connections a transport
    // shares: a new transport opens them again); hop-one's ProxyCommand still applies.
    const t2 = transport({ configFile: config, identityFile: undefined, agent: false, user: undefined, port: fleet.port });
    const r2 = await t2.exec(host('via-list', { ssh: own }), 'echo "$SSH_CONNECTION" | cut -d" " -f3');
    expect(r2.stdout).toBe('127.0.0.4\n');
    expect(readFileSync(mark, 'utf8').split('\n').filter(Boolean)).toHaveLength(2);
    // A Host block that jumps through itself is refused before any connection, as ssh refuses it.
    await expect(t.exec(host('loopy', { ssh: own }), 'true')).rejects.toThrow(/jump host: loopy jumps through itself/);
    // A loop ssh does not notice (the hop's name is not its HostName) would start ssh after ssh: graywave stops it.
    await expect(t.exec(host('loop-a', { ssh: own }), 'true')).rejects.toThrow(/jump host: more than 16 ProxyJump hops to reach loop-a/);
  });

  test('HostKeyAlias, UserKnownHostsFile and GlobalKnownHostsFile of the host’s Host block decide host key checking', async () => {
    const dir = fleet.dir;
    const userKh = join(dir, 'kh-user-alias');
    const globalKh = join(dir, 'kh-global');
    writeFileSync(userKh, `web-pool ${fleet.hostKeyPub}\n`); // recorded under the alias only
    writeFileSync(globalKh, `[127.0.0.7]:${fleet.port} ${fleet.hostKeyPub}\n`);
    const config = join(dir, 'ssh_config_known');
    writeFileSync(
      config,
      [
        'Host aliased',
        '  HostName 127.0.0.6',
        '  HostKeyAlias Web-Pool', // ssh lower-cases it
        `  CertificateFile ${dir}/client_key-cert.pub`,
        `  UserKnownHostsFile ${userKh}`,
        '  GlobalKnownHostsFile none',
        'Host not-aliased',
        '  HostName 127.0.0.6',
        `  UserKnownHostsFile ${userKh}`,
        '  GlobalKnownHostsFile none',
        'Host other-alias',
        '  HostName 127.0.0.6',
        '  HostKeyAlias db-pool',
        `  UserKnownHostsFile ${userKh}`,
        '  GlobalKnownHostsFile none',
        'Host global-only',
        '  HostName 127.0.0.7',
        '  UserKnownHostsFile none',
        `  GlobalKnownHostsFile ${globalKh}`,
        '',
      ].join('\n'),
    );
    const t = transport({ configFile: config, knownHostsFile: undefined });
    logs.length = 0;
    expect((await t.exec(host('aliased'), 'echo ok')).stdout).toBe('ok\n');
    // A CertificateFile cannot be offered: the plain key (authorized here) is, and the host log says so, with the line.
    expect(logs).toContainEqual(
      expect.stringMatching(new RegExp(`^h-aliased: warning: ssh config ${config}:4: CertificateFile .*cannot authenticate with OpenSSH certificates`)),
    );
    expect((await t.exec(host('global-only'), 'echo ok')).stdout).toBe('ok\n');
    // The same host without the alias is looked up as [127.0.0.6]:port, which the file does not have.
    await expect(t.exec(host('not-aliased'), 'true')).rejects.toThrow(
      new RegExp(`host key of \\[127\\.0\\.0\\.6\\]:${fleet.port} is unknown .*not in ${userKh}\\)`),
    );
    const err = (await t.exec(host('other-alias'), 'true').catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(new RegExp(`host key of db-pool \\(HostKeyAlias of 127\\.0\\.0\\.6:${fleet.port}\\) is unknown`));
    expect(err.message).toContain(`echo 'db-pool ssh-ed25519 `);
  });

  test.skipIf(!hasSudo)('sudo with a password: runs as root on the shell and session paths; the password shows nowhere', async () => {
    logs.length = 0;
    const t = transport({ user: users.sudo.name, sudo: { password: { env: 'GW_SUDO_PW' } } }, { GW_SUDO_PW: SUDO_PASSWORD });
    const h = host('127.0.0.8');
    const outs: string[] = [];
    const onOutput = (c: string) => outs.push(c);
    const a = await t.exec(h, 'id -u; echo "$SUDO_USER"', { onOutput });
    expect(a).toMatchObject({ code: 0, stdout: `0\n${users.sudo.name}\n` });
    const b = await t.exec(h, 'cat; id -u', { input: 'from stdin\n', onOutput });
    expect(b).toMatchObject({ code: 0, stdout: 'from stdin\n0\n' });
    const c = await t.exec(h, 'exit 7', { onOutput });
    expect(c.code).toBe(7);
    const slow = await t.exec(h, 'sleep 30', { timeoutMs: 300 });
    expect(slow).toMatchObject({ code: null, timedOut: true });
    const seen = [...logs, ...outs, JSON.stringify([a, b, c, slow])].join('\n');
    expect(seen).not.toContain(SUDO_PASSWORD);
  });

  test.skipIf(!hasSudo)('sudo that needs a password not given, a tty, or a wrong password fails saying so', async () => {
    const none = await transport({ user: users.sudo.name, sudo: true }).exec(host('127.0.0.9'), 'id -u');
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/asks for a password and none was given: set transport\.sudo: \{ password/);
    const tty = await transport({ user: users.tty.name, sudo: { password: { env: 'P' } } }, { P: SUDO_PASSWORD }).exec(host('127.0.0.9'), 'id -u');
    expect(tty.code).not.toBe(0);
    expect(tty.stderr).toMatch(/wants a terminal \(sudoers `Defaults requiretty`\)/);
    const wrong = await transport({ user: users.sudo.name, sudo: { password: { env: 'P' } } }, { P: 'not-it' }).exec(host('127.0.0.6'), 'id -u', {
      timeoutMs: 20_000,
    });
    expect(wrong).toMatchObject({ timedOut: false });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/sudo refused the password/);
  });

  test('no SFTP subsystem: the upload streams over an exec channel, is checked by SHA-256, then renamed', async () => {
    const t = transport({}, {}, bare);
    const h = host('127.0.0.10');
    const src = join(bare.dir, 'artifact.bin');
    const data = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    writeFileSync(src, data);
    const dst = join(bare.dir, 'uploaded.bin');
    await t.upload(h, src, dst);
    expect(readFileSync(dst).equals(data)).toBe(true);
    expect(logs.some((l) => l.includes('no SFTP on this host'))).toBe(true);
    // A checksum that does not match: nothing lands at the destination, and no temp file stays.
    const dst2 = join(bare.dir, 'never.bin');
    await expect(t.upload(h, src, dst2, { sha256: '0'.repeat(64) })).rejects.toThrow(/upload of .* failed: checksum mismatch/);
    expect(existsSync(dst2)).toBe(false);
    expect(existsSync(`${dst2}.graywave-part`)).toBe(false);
    // A directory that does not exist: the host's own error, naming the path.
    await expect(t.upload(h, src, join(bare.dir, 'no/such/dir/x.bin'))).rejects.toThrow(/x\.bin failed: .*No such file or directory/);
  });
});
