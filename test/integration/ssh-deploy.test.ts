import { execFileSync, spawn } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { deployAction, type DeploySaved } from '../../src/actions/deploy.js';
import type { StepContext } from '../../src/actions/types.js';
import type { Host } from '../../src/playbook/types.js';
import { SshTransport } from '../../src/transport/ssh.js';
import { LocalTransport } from '../../src/transport/local.js';
import type { RemoteFiles, Transport } from '../../src/transport/types.js';
import { TransportError } from '../../src/errors.js';
import { Secrets } from '../../src/util/secrets.js';
import { render, renderShell } from '../../src/util/template.js';
import { makePlaybook } from '../helpers/contexts.js';
import { requireBinary, waitFor } from './helpers/process.js';
import { descendants, fleetOptions, hasSshd, loopbacks, startSshFleet, type SshFleet } from './helpers/sshd.js';

/** Counts SFTP uploads per host, to see which were skipped, and records the commands; files as the SSH transport's. */
class Counting implements Transport {
  uploads = new Map<string, number>();
  commands: string[] = [];
  constructor(readonly inner: SshTransport) {}
  exec: Transport['exec'] = (h, c, o) => (this.commands.push(c), this.inner.exec(h, c, o));
  files: NonNullable<Transport['files']> = (h, o) => this.inner.files(h, o);
  upload: Transport['upload'] = async (h, l, r, o) => {
    this.uploads.set(h.name, (this.uploads.get(h.name) ?? 0) + 1);
    return this.inner.upload(h, l, r, o);
  };
  release: Transport['release'] = (h) => this.inner.release(h);
  close: Transport['close'] = () => this.inner.close();
}

function stepCtx(dir: string, host: Host, version: string, transport: Transport, lines: string[] = []): StepContext {
  const values = { release: 'r1', version, group: 'GREEN', host };
  const signal = new AbortController().signal;
  return {
    host,
    playbook: makePlaybook({ dir, version, hosts: [host] }),
    wave: 1,
    step: 'deploy',
    transport,
    signal,
    render: (t) => render(t, values),
    renderShell: (t) => renderShell(t, values),
    sh: (command, o) => transport.exec(host, command, { timeoutMs: o?.timeoutMs, input: o?.input, signal }),
    provider: () => {
      throw new Error('none');
    },
    monitor: () => {
      throw new Error('none');
    },
    savedOf: () => undefined,
    progress: () => {},
    log: (l) => void lines.push(l),
    deadline: Infinity,
  };
}

// strace (Debian package `strace`) sees every process the host's sshd starts; CI=true: missing is a failure.
const hasStrace = hasSshd() && requireBinary('/usr/bin/strace', 'apt-get install -y strace');

interface HostEvent {
  /** Epoch seconds. */
  t: number;
  kind: 'exec' | 'fork';
  argv: string[];
}

/**
 * Traces every process start under a fleet's sshd listeners (their sessions, command shells and SFTP servers) with
 * strace -f until stop(): forks (clone/fork/vfork that made a child) and execs (with argv).
 */
async function traceSshd(fleet: SshFleet, out: string): Promise<{ stop(): Promise<HostEvent[]> }> {
  const pids = fleet.servers.flatMap((s) => [s.pid, ...descendants(s.pid).map((d) => d.pid)]);
  const args = ['-f', '-ttt', '-s', '256', '-e', 'trace=execve,clone,clone3,fork,vfork', '-e', 'signal=none', '-o', out];
  const child = spawn('/usr/bin/strace', [...args, ...pids.flatMap((p) => ['-p', String(p)])], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise((r) => child.on('exit', r));
  await waitFor(() => (err.match(/attached/g) ?? []).length >= pids.length, `strace attached to ${pids.length} processes`, { timeoutMs: 15_000 });
  return {
    async stop() {
      child.kill('SIGINT');
      await exited;
      const events: HostEvent[] = [];
      const pending = new Map<string, string[]>(); // an execve cut by another process's line: `<unfinished ...>`
      for (const line of readFileSync(out, 'utf8').split('\n')) {
        const m = /^(\d+)\s+(\d+\.\d+) (.*)$/.exec(line); // strace pads the PID to five columns
        if (!m) continue;
        const [, pid, t, call] = m as unknown as [string, string, string, string];
        // execve("PATH", ["ARG", …], 0x… /* N vars */): the strings after the path are argv (C-escaped, maybe cut).
        if (call.startsWith('execve(')) {
          const strings = [...call.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((x) => x[1]!.replace(/\\(.)/g, '$1'));
          if (/ = 0$/.test(call)) events.push({ t: Number(t), kind: 'exec', argv: strings.slice(1) });
          else if (call.endsWith('<unfinished ...>')) pending.set(pid, strings.slice(1));
        } else if (call.startsWith('<... execve resumed>') && / = 0$/.test(call)) {
          events.push({ t: Number(t), kind: 'exec', argv: pending.get(pid) ?? [] });
        } else if (/^(<\.\.\. )?(clone3?|v?fork)\b.* = [1-9]\d*$/.test(call)) events.push({ t: Number(t), kind: 'fork', argv: [] });
      }
      return events;
    },
  };
}

// sudo (Debian package `sudo`) for the sudo: true tests; CI=true: missing is a failure.
const hasSudo = hasSshd() && requireBinary('/usr/bin/sudo', 'apt-get install -y sudo');

// The same release on hosts with SFTP and on hardened hosts without the subsystem (uploads over an exec channel).
describe.skipIf(!hasSshd()).each([
  { sftp: true, n: 8 },
  { sftp: false, n: 4 },
])('deploy over SSH to $n hosts (real sshd, sftp: $sftp)', ({ sftp, n }) => {
  let fleet: SshFleet;
  let t: Counting;
  let hosts: Host[];
  const logs: string[] = [];
  const params = deployAction.params.parse({
    artifact: 'build/svc-{{version}}.tar.gz',
    to: '{{host.vars.root}}/opt/svc',
    keep: 3,
    // The app comes up in the release group; $SSH_CONNECTION proves it ran through that host's own address.
    start: 'echo "{{version}} {{group}}" $(echo $SSH_CONNECTION | cut -d" " -f3) >> {{host.vars.root}}/starts.log',
    healthy: { command: 'test -f {{host.vars.root}}/opt/svc/current/VERSION', timeout: '10s' },
  });

  beforeAll(async () => {
    // With SFTP: OpenSSH's sftp-server program, as Debian's sshd_config has it (other test files use internal-sftp).
    fleet = await startSshFleet(loopbacks(2, n + 1), { sftp: sftp && 'external' });
    t = new Counting(newTransport());
    hosts = fleet.addresses.map((a, i) => ({ name: `web-${i + 1}`, address: a, vars: { root: join(fleet.dir, `host-${i + 1}`) }, labels: {} }));
    for (const h of hosts) mkdirSync(h.vars.root as string);
    for (const v of ['1.0.0', '2.0.0']) {
      const src = join(fleet.dir, `src-${v}`);
      mkdirSync(src);
      writeFileSync(join(src, 'VERSION'), v);
      mkdirSync(join(fleet.dir, 'build'), { recursive: true });
      execFileSync('tar', ['-czf', join(fleet.dir, 'build', `svc-${v}.tar.gz`), '-C', src, '.']);
    }
    for (const v of ['1.0.0', '2.0.0', '3.0.0']) writeFileSync(join(fleet.dir, 'build', `svc-${v}.jar`), `jar ${v}\n`);
  }, 30_000);
  afterAll(async () => {
    await t?.close();
    await fleet?.stop();
  });

  const newTransport = (extra: Record<string, unknown> = {}) =>
    new SshTransport(fleetOptions(fleet, extra), {
      dir: fleet.dir,
      secrets: new Secrets(fleet.dir, {}),
      log: (h, line) => logs.push(`${h.name}: ${line}`),
    });
  const current = (h: Host) => readlinkSync(join(h.vars.root as string, 'opt/svc/current'));
  // The SFTP path's tests exist only on the fleet with SFTP (the other fleet does not report them as skipped); the
  // process count needs strace (CI=true: missing is a failure, see hasStrace).
  const sftpOnly = (name: string, fn: () => Promise<void>, needs = true) => {
    if (sftp) test.skipIf(!needs)(name, fn);
  };

  test('1.0.0 then 2.0.0 on every host in parallel, then rollback of every host', async () => {
    for (const version of ['1.0.0', '2.0.0']) {
      await Promise.all(hosts.map((h) => deployAction.do(stepCtx(fleet.dir, h, version, t), params)));
    }
    const saved = await Promise.all(hosts.map((h) => deployAction.do(stepCtx(fleet.dir, h, '2.0.0', t), params) as Promise<DeploySaved>));
    for (const [i, h] of hosts.entries()) {
      expect(current(h)).toBe(join(h.vars.root as string, 'opt/svc/releases/2.0.0'));
      expect(saved[i]!.previous).toBe(join(h.vars.root as string, 'opt/svc/releases/1.0.0'));
      // Two uploads per host (1.0.0, 2.0.0); the repeated 2.0.0 (a resume) found the checksum and skipped it.
      expect(t.uploads.get(h.name)).toBe(2);
      const starts = readFileSync(join(h.vars.root as string, 'starts.log'), 'utf8')
        .trim()
        .split('\n');
      expect(starts[0]).toMatch(new RegExp(`^1\\.0\\.0 GREEN ${h.address.replace(/\./g, '\\.')}$`));
      expect(starts.at(-1)).toMatch(/^2\.0\.0 GREEN/);
    }
    const t0 = Date.now();
    await Promise.all(hosts.map((h, i) => deployAction.undo!(stepCtx(fleet.dir, h, '2.0.0', t), params, saved[i])));
    const rollbackMs = Date.now() - t0;
    for (const h of hosts) {
      expect(current(h)).toBe(join(h.vars.root as string, 'opt/svc/releases/1.0.0'));
      expect(readFileSync(join(h.vars.root as string, 'opt/svc/current/VERSION'), 'utf8')).toBe('1.0.0');
    }
    expect(rollbackMs).toBeLessThan(30_000); // generous (a loaded 2-core machine), still not minutes: no upload, one switch and a start
    // Without the subsystem every host said so once per connection and streamed instead; with it, none did.
    const noSftp = logs.filter((l) => l.includes('no SFTP on this host'));
    if (sftp) expect(noSftp).toEqual([]);
    else expect(new Set(noSftp.map((l) => l.split(':')[0]))).toEqual(new Set(hosts.map((h) => h.name)));
    // Files through SFTP where there is SFTP; without it, the shell way (whose commands read and switch).
    expect(!!(await t.files(hosts[0]!))).toBe(sftp);
    expect(t.commands.some((c) => c.includes('readlink'))).toBe(!sftp);
    // Without SFTP the host checked each upload's SHA-256 as it was written: the shell install does not hash it again.
    const installs = t.commands.filter((c) => c.includes('mv -T'));
    expect(installs.length > 0).toBe(!sftp);
    expect(installs.filter((c) => c.includes('got=$(sha256sum'))).toEqual([]);
  });

  test.skipIf(!hasSudo)('with sudo: true the files are written by the sudo user; the upload goes as the login user', async () => {
    const sudo = newTransport({ sudo: true });
    try {
      const h = { ...hosts[0]!, name: 'sudo-host', vars: { root: join(fleet.dir, 'sudo-root') } };
      // Files are changed as root through the shell: no SFTP way under sudo (unless the call asks for no sudo).
      expect(await sudo.files(h)).toBeUndefined();
      expect(!!(await sudo.files(h, { sudo: false }))).toBe(sftp);
      mkdirSync(h.vars.root);
      const p = deployAction.params.parse({ ...params, start: 'echo "$SUDO_USER" > {{host.vars.root}}/who', healthy: undefined });
      await deployAction.do(stepCtx(fleet.dir, h, '1.0.0', sudo), p);
      expect(readFileSync(join(h.vars.root, 'who'), 'utf8')).toBe('root\n');
      expect(current(h)).toBe(join(h.vars.root, 'opt/svc/releases/1.0.0'));
    } finally {
      await sudo.close();
    }
  });

  /** A host of its own on the fleet's first address, reached by a transport of its own (a connection of its own). */
  const ownHost = (name: string) => {
    const h: Host = { name, address: hosts[0]!.address, vars: { root: join(fleet.dir, name) }, labels: {} };
    mkdirSync(h.vars.root as string);
    return h;
  };
  const jarParams = (extra: object = {}) =>
    deployAction.params.parse({ artifact: 'build/svc-{{version}}.jar', to: '{{host.vars.root}}/opt/svc', keep: 3, ...extra });

  sftpOnly(
    'through SFTP a deploy starts no process on the host but sha256sum; a re-run and an undo start none',
    async () => {
      const own = new Counting(newTransport());
      const h = ownHost('traced');
      try {
        // The connection, its command shell and its SFTP session exist before tracing (a release opens them once).
        await own.exec(h, 'true');
        await (await own.files(h))!.kind('/');
        const trace = await traceSshd(fleet, join(fleet.dir, 'deploy.strace'));
        const marks: number[] = [];
        const lines: string[] = [];
        const saved = (await deployAction.do(stepCtx(fleet.dir, h, '1.0.0', own, lines), jarParams())) as DeploySaved;
        marks.push(Date.now() / 1000);
        await deployAction.do(stepCtx(fleet.dir, h, '1.0.0', own), jarParams());
        marks.push(Date.now() / 1000);
        await deployAction.do(stepCtx(fleet.dir, h, '2.0.0', own), jarParams());
        await deployAction.undo!(stepCtx(fleet.dir, h, '2.0.0', own), jarParams(), undefined);
        const events = await trace.stop();
        const phase = (from: number, to: number) => events.filter((e) => e.t > from && e.t <= to);
        const first = phase(0, marks[0]!);
        // One process: the driver's fork that execs sha256sum on the upload (no bash, no readlink, mkdir, mv or ln).
        expect(first.filter((e) => e.kind === 'exec').map((e) => e.argv)).toEqual([
          ['sha256sum', `/tmp/graywave-traced-${saved.sha256.slice(0, 16)}-svc-1.0.0.jar`],
        ]);
        expect(first.filter((e) => e.kind === 'fork')).toHaveLength(1);
        expect(phase(marks[0]!, marks[1]!)).toEqual([]); // the re-run: the marker matches, nothing runs
        const rest = phase(marks[1]!, Infinity);
        expect(rest.filter((e) => e.kind === 'exec').map((e) => e.argv[0])).toEqual(['sha256sum']); // 2.0.0's; the undo none
        expect(lines.some((l) => /^deploy: sftp rename \S+\/\.current\.graywave-\w+ -> \S+\/opt\/svc\/current$/.test(l))).toBe(true);
        expect(readlinkSync(join(h.vars.root as string, 'opt/svc/current'))).toBe(join(h.vars.root as string, 'opt/svc/releases/1.0.0'));
      } finally {
        await own.close();
      }
    },
    hasStrace,
  );

  sftpOnly('through SFTP current links to the release (not the other way round), is switched atomically, and prune keeps `keep`', async () => {
    const h = ownHost('switch');
    const root = h.vars.root as string;
    const rel = join(root, 'opt/svc/releases');
    const versions = ['1.0.0', '2.0.0', '3.0.0'];
    // Releases a minute apart, as on a real host (SFTP gives whole seconds; equal ones at the cut would ask ls -t).
    for (const [i, v] of versions.entries()) {
      await deployAction.do(stepCtx(fleet.dir, h, v, t), jarParams({ keep: 5 }));
      utimesSync(join(rel, v), 1_700_000_000 + i * 60, 1_700_000_000 + i * 60);
    }
    expect(lstatSync(join(root, 'opt/svc/current')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(root, 'opt/svc/current'))).toBe(join(rel, '3.0.0'));
    expect(lstatSync(join(rel, '3.0.0')).isDirectory()).toBe(true);
    expect(readFileSync(join(root, 'opt/svc/current/svc-3.0.0.jar'), 'utf8')).toBe('jar 3.0.0\n');
    // A reader on the host sees `current` at every moment while it is switched back and forth.
    const watcher = spawn('/bin/bash', ['-c', `n=0; while [ ! -e stop ]; do [ -f current/.graywave-sha256 ] || echo gap; n=$((n+1)); done; echo "reads $n"`], {
      cwd: join(root, 'opt/svc'),
    });
    let out = '';
    watcher.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const ended = new Promise((r) => watcher.on('exit', r));
    try {
      for (let i = 0; i < 4; i++) {
        await deployAction.undo!(stepCtx(fleet.dir, h, '3.0.0', t), jarParams({ keep: 5 }), undefined);
        await deployAction.do(stepCtx(fleet.dir, h, '3.0.0', t), jarParams({ keep: 5 }));
      }
    } finally {
      writeFileSync(join(root, 'opt/svc/stop'), '');
      await ended;
    }
    expect(out).toMatch(/^reads [1-9]\d*\n$/); // read many times, never a gap
    t.commands = [];
    await deployAction.do(stepCtx(fleet.dir, h, '3.0.0', t), jarParams({ keep: 1 }));
    // keep 1: the live 3.0.0 and the previous 2.0.0 (undo's) stay; 1.0.0 goes in one command.
    expect(readdirSync(rel).sort()).toEqual(['2.0.0', '3.0.0']);
    expect(t.commands).toEqual([`rm -rf -- ${join(rel, '1.0.0')}`]);
  });

  sftpOnly('RemoteFiles over SFTP answer as node:fs does on this machine (missing is undefined, other errors name host and path)', async () => {
    const scenario = async (f: RemoteFiles, root: string) => {
      const p = (rel: string) => join(root, rel);
      await f.mkdirp(p('a/b/c'));
      await f.mkdirp(p('a/b/c')); // again: fine, as mkdir -p
      await f.write(p('a/f'), 'one\ntwo\n');
      await f.write(p('a/g'), 'old');
      await f.rename(p('a/f'), p('a/g')); // replaces
      await f.symlink(p('a/b'), p('a/link'));
      const error = (e: unknown) =>
        e instanceof TransportError ? `TransportError ${e.host}: ${e.message.includes(p('x/y')) ? 'path' : e.message}` : String(e);
      return {
        read: await f.read(p('a/g')),
        missing: await f.read(p('nope')),
        readlink: (await f.readlink(p('a/link')))?.replace(root, '<root>'),
        notLink: await f.readlink(p('a/g')),
        kinds: await Promise.all(['a', 'a/g', 'a/link', 'nope'].map((r) => f.kind(p(r)))),
        list: ((await f.list(p('a'))) ?? []).map((e) => `${e.name}:${e.kind}`).sort(),
        noDir: await f.list(p('nope')),
        unlinkMissing: await f.unlink(p('nope')),
        writeIntoMissingDir: await f.write(p('x/y'), 'z').then(() => 'written', error),
        renameMissing: await f.rename(p('x/y'), p('a/z')).then(() => 'renamed', error),
      };
    };
    const h = ownHost('files-api');
    const local = new LocalTransport();
    const viaSftp = await scenario((await t.files(h))!, join(h.vars.root as string, 'sftp'));
    const viaFs = await scenario((await local.files({ ...h, address: 'local' }))!, join(h.vars.root as string, 'fs'));
    expect(viaSftp).toEqual(viaFs);
    expect(viaSftp).toMatchObject({
      read: 'one\ntwo\n',
      missing: undefined,
      readlink: '<root>/a/b',
      notLink: undefined,
      kinds: ['dir', 'file', 'link', 'missing'],
    });
    expect(viaSftp.writeIntoMissingDir).toBe('TransportError files-api: path');
  });
});
