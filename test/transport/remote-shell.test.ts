import { spawn, spawnSync, type SpawnSyncOptionsWithStringEncoding } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { quote } from 'shell-quote';
import type { ClientChannel } from 'ssh2';
import { DRIVER, RemoteShell, ShellEnded } from '../../src/transport/remote-shell.js';

/** A stand-in for an ssh2 session channel: what the shell writes is recorded, what the host says is pushed. */
class FakeChannel extends EventEmitter {
  written: string[] = [];
  stderr = Object.assign(new EventEmitter(), { setEncoding() {} });
  setEncoding() {}
  write(s: string) {
    this.written.push(s);
    return true;
  }
  end() {}
  close() {
    this.emit('close');
  }
  out(s: string) {
    this.emit('data', s);
  }
  err(s: string) {
    this.stderr.emit('data', s);
  }
}

function setup() {
  const ch = new FakeChannel();
  const logs: string[] = [];
  const shell = new RemoteShell(ch as unknown as ClientChannel, 'n0nce', (l) => logs.push(l));
  const m = (body: string) => `\x1en0nce:${body}\n`;
  return { ch, shell, logs, m };
}

/** Feeds `text` to `push` cut at the given positions. */
function feed(push: (s: string) => void, text: string, cuts: number[]) {
  let at = 0;
  for (const c of [...cuts, text.length]) {
    if (c > at) push(text.slice(at, c));
    at = c;
  }
}

describe('RemoteShell', () => {
  test('the command goes out NUL-terminated; output between the markers, the status from the end markers', async () => {
    const { ch, shell, m } = setup();
    expect(shell.tryClaim()).toBe(true);
    expect(shell.tryClaim()).toBe(false); // reserved: a concurrent caller must use a session of its own
    const pids: number[] = [];
    const out: string[] = [];
    const p = shell.run('echo hi; exit 3', { onPid: (x) => pids.push(x), onOutput: (c, s) => out.push(`${s}:${c}`) });
    expect(ch.written).toEqual(['\0echo hi; exit 3\0']); // no environment, then the command
    ch.out(m('s') + 'hi\n');
    ch.err(m('s') + m('p:4242') + 'warn\n');
    ch.out(m('e:3'));
    ch.err(m('e:3'));
    expect(await p).toEqual({ code: 3, timedOut: false, stdout: 'hi\n', stderr: 'warn\n' });
    expect(pids).toEqual([4242]);
    expect(out).toEqual(['stdout:hi\n', 'stderr:warn\n']);
    expect(shell.tryClaim()).toBe(true); // free again
  });

  test('markers cut at every position, and a marker-like byte in the output, come through intact', async () => {
    const { m } = setup();
    const stdoutText = m('s') + 'a\x1eb\x1en0nc' + 'x\n' + 'end' + m('e:0');
    const stderrText = m('s') + 'partial line' + m('p:7') + ' rest\n' + m('e:0');
    for (let cut = 0; cut <= stdoutText.length; cut++) {
      const fresh = new FakeChannel();
      const s = new RemoteShell(fresh as unknown as ClientChannel, 'n0nce');
      expect(s.tryClaim()).toBe(true);
      let pid = 0;
      const p = s.run('x', { onPid: (x) => (pid = x) });
      feed((c) => fresh.out(c), stdoutText, [cut, cut + 1]);
      feed((c) => fresh.err(c), stderrText, [Math.min(cut, stderrText.length), Math.min(cut + 3, stderrText.length)]);
      const r = await p;
      expect(r).toEqual({ code: 0, timedOut: false, stdout: 'a\x1eb\x1en0ncx\nend', stderr: 'partial line rest\n' });
      expect(pid).toBe(7);
    }
  });

  test('a status above 128 that names a signal is reported as that signal', async () => {
    const { ch, shell, m } = setup();
    shell.tryClaim();
    const p = shell.run('kill -TERM $$', { onPid: () => {} });
    ch.out(m('s') + m('e:143'));
    ch.err(m('s') + m('e:143'));
    expect(await p).toMatchObject({ code: null, signal: 'SIGTERM' });
  });

  test('a status above 128 flagged `exit` (the job notice said Exit) stays an exit status', async () => {
    const { ch, shell, m } = setup();
    shell.tryClaim();
    const p = shell.run('exit 143', { onPid: () => {} });
    ch.out(m('s') + m('e:143:exit'));
    ch.err(m('s') + m('e:143:exit'));
    expect(await p).toEqual({ code: 143, timedOut: false, stdout: '', stderr: '' });
    expect(shell.closed).toBe(false);
    // Both flags at once: an exit status, and processes left behind retire the shell.
    shell.tryClaim();
    const q = shell.run('app & exit 130', { onPid: () => {} });
    ch.out(m('s') + m('e:130:exit:left'));
    ch.err(m('s') + m('e:130:exit:left'));
    expect(await q).toMatchObject({ code: 130 });
    expect(shell.closed).toBe(true);
  });

  test('output outside any command goes to the log, not to the next command', async () => {
    const { ch, shell, logs, m } = setup();
    ch.out('late from a background process\n');
    shell.tryClaim();
    const p = shell.run('true', { onPid: () => {} });
    ch.out(m('s') + m('e:0'));
    ch.err(m('s') + m('e:0'));
    expect((await p).stdout).toBe('');
    expect(logs.join('\n')).toContain('late from a background process');
  });

  test('processes left behind retire the shell; a shell that ends says whether the command had started', async () => {
    const { ch, shell, m } = setup();
    shell.tryClaim();
    const p = shell.run('app &', { onPid: () => {} });
    ch.out(m('s') + m('e:0:left'));
    ch.err(m('s') + m('e:0:left'));
    expect((await p).code).toBe(0);
    expect(shell.closed).toBe(true);
    expect(shell.tryClaim()).toBe(false);

    const b = setup();
    b.shell.tryClaim();
    const notStarted = b.shell.run('x', { onPid: () => {} });
    b.ch.close();
    const e1 = await notStarted.catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ShellEnded);
    expect((e1 as ShellEnded).started).toBe(false);

    const c = setup();
    c.shell.tryClaim();
    const started = c.shell.run('x', { onPid: () => {} });
    c.ch.out(c.m('s'));
    c.ch.close();
    expect(((await started.catch((e: unknown) => e)) as ShellEnded).started).toBe(true);
  });

  test('commands are numbered as the driver counts them; an empty one is sent as `:` (empty means quit); end() quits', async () => {
    const { ch, shell, m } = setup();
    for (const [i, script] of ['true', ''].entries()) {
      shell.tryClaim();
      const p = shell.run(script, { onPid: () => {} });
      ch.out(m('s') + m('e:0'));
      ch.err(m('s') + m('e:0'));
      await p;
      expect(ch.written[i]).toBe(script === '' ? '\0:\0' : '\0true\0');
    }
    shell.tryClaim();
    const third = shell.run('sleep 1', { onPid: () => {} });
    ch.close(); // the connection went away before any marker of the third command came back
    const err = (await third.catch((e: unknown) => e)) as ShellEnded;
    expect(err).toMatchObject({ started: false, sent: true, seq: 3 });
    expect(((await shell.run('x', { onPid: () => {} }).catch((e: unknown) => e)) as ShellEnded).sent).toBe(false);

    const b = setup();
    const ended = b.shell.end(1000);
    expect(b.ch.written).toEqual(['\0\0']);
    b.ch.close();
    await ended; // resolves when the driver is gone
  });

  test('a command with a NUL byte is refused before it is sent', async () => {
    const { ch, shell } = setup();
    shell.tryClaim();
    await expect(shell.run('a\0b', { onPid: () => {} })).rejects.toThrow(/NUL/);
    expect(ch.written).toEqual([]);
    expect(shell.tryClaim()).toBe(true); // the refusal released the reservation
  });
});

/**
 * The DRIVER itself, run by this machine's bash: each command's output and status must be what a fresh
 * `bash --norc --noprofile -c COMMAND` gives (the oracle), whether the driver execs the command at once (one external
 * program with plain words) or gives it a bash of its own.
 */
describe('the driver, run by the local bash, against a fresh bash -c', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-driver-'));
  const noShebang = join(dir, 'no-shebang');
  writeFileSync(noShebang, 'echo "script SHLVL=$SHLVL args=$*"\nexit 5\n', { mode: 0o755 });
  // Both start from the same environment (bash -c passes SHLVL on unchanged to a command it execs, as the driver does).
  // An exported function that shadows a program: a plain `uname -s` must still call the function, as bash -c does.
  const env = { ...process.env, SHLVL: '1', 'BASH_FUNC_uname%%': '() {  echo "uname, the function: $*"\n}' };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function viaDriver(commands: string[], exports = ''): Promise<{ stdout: string; stderr: string; status: number; pid?: number }[]> {
    return new Promise((resolve, reject) => {
      const b = spawn('/bin/bash', ['--norc', '--noprofile', '-c', DRIVER, 'graywave-shell', 'n0nce', '-'], { cwd: dir, env });
      const streams = ['', ''];
      b.stdout.on('data', (c: Buffer) => (streams[0] += c.toString()));
      b.stderr.on('data', (c: Buffer) => (streams[1] += c.toString()));
      b.on('error', reject);
      b.on('close', () => {
        const parts = streams.map((s) => s.split('\x1en0nce:s\n').slice(1));
        resolve(
          commands.map((_, i) => {
            const [out, err] = parts.map((p) => p[i] ?? '');
            const end = /\x1en0nce:e:(\d+)[^\n]*\n$/;
            return {
              stdout: out!.replace(end, ''),
              stderr: err!.replace(/^\x1en0nce:p:\d+\n/, '').replace(end, ''),
              status: Number(end.exec(out!)?.[1] ?? -1),
              pid: Number(/^\x1en0nce:p:(\d+)\n/.exec(err!)?.[1]),
            };
          }),
        );
      });
      b.stdin.end(commands.map((c) => `${exports}\0${c}\0`).join('') + '\0\0');
    });
  }

  function viaBash(command: string, exports = ''): { stdout: string; stderr: string; status: number } {
    // A process group of its own, as the driver's job has (`kill 0` below): spawnSync honours `detached` (Node's
    // SyncProcessRunner), though its option type does not list it.
    const options: SpawnSyncOptionsWithStringEncoding & { detached: boolean } = { cwd: dir, env, encoding: 'utf8', detached: true };
    const r = spawnSync('/bin/bash', ['--norc', '--noprofile', '-c', exports + command], options);
    return { stdout: r.stdout, stderr: r.stderr, status: r.status ?? 128 + (constants.signals[r.signal as keyof typeof constants.signals] ?? 0) };
  }

  const sortLines = (s: string) => s.split('\n').sort().join('\n');

  test('plain commands, keywords, builtins, quoting, missing programs and scripts without #! all behave as under bash -c', async () => {
    const commands = [
      '/usr/bin/env', // the whole environment, `_` and SHLVL included
      'env',
      'printenv SHLVL',
      '/bin/false',
      'uname -s',
      '/usr/bin/printf %s: a b,c d=e @f +g',
      `${noShebang} x y`,
      'nosuch-command-graywave', // bash's own "command not found"
      '/nonexistent/graywave/prog',
      dir, // a directory
      'FOO=bar /usr/bin/printenv FOO', // an assignment first
      'echo builtin words',
      'time /bin/true', // the keyword, not /usr/bin/time
      "/bin/sh -c 'kill -TERM $$'",
      '/bin/kill -TERM 0', // a plain command that kills its own process group: the job's, as under bash -c
      `/usr/bin/printf "%s" '$HOME' *`,
    ];
    const got = await viaDriver(commands);
    commands.forEach((c, i) => {
      const want = viaBash(c);
      const g = got[i]!;
      if (c.includes('env')) expect({ c, out: sortLines(g.stdout), status: g.status }).toEqual({ c, out: sortLines(want.stdout), status: want.status });
      else if (c.startsWith('time '))
        expect({ c, out: g.stdout, status: g.status, timed: /real/.test(g.stderr) }).toEqual({ c, out: want.stdout, status: want.status, timed: true });
      else expect({ c, stdout: g.stdout, stderr: g.stderr, status: g.status }).toEqual({ c, ...want });
    });
  });

  test('with an environment (the exports every step carries): what bash -c gives with the exports in front', async () => {
    // As the ssh transport writes them (envExports): one `export` of quoted words. A value with spaces, quotes, `$`
    // and a newline; a PATH that makes a program resolvable only through it.
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'only-on-new-path'), '#!/bin/sh\necho "found on PATH, GRAYWAVE_HOST=$GRAYWAVE_HOST"\n', { mode: 0o755 });
    const exports = `export ${quote(['GRAYWAVE_HOST=h-01', `GRAYWAVE_NOTE=a b 'c' "d" $x\nline2`, `PATH=${bin}:${process.env.PATH}`])}; `;
    const commands = [
      '/usr/bin/printenv GRAYWAVE_HOST',
      '/usr/bin/printenv GRAYWAVE_NOTE',
      '/usr/bin/env',
      'only-on-new-path',
      'uname -s',
      'echo $GRAYWAVE_HOST',
    ];
    const got = await viaDriver(commands, exports);
    commands.forEach((c, i) => {
      const want = viaBash(c, exports);
      const g = got[i]!;
      if (c.includes('env')) expect({ c, out: sortLines(g.stdout), status: g.status }).toEqual({ c, out: sortLines(want.stdout), status: want.status });
      else expect({ c, stdout: g.stdout, stderr: g.stderr, status: g.status }).toEqual({ c, ...want });
    });
    expect(got[0]!.stdout).toBe('h-01\n');
    expect(got[3]!.stdout).toBe('found on PATH, GRAYWAVE_HOST=h-01\n');
    // The driver's own shell is untouched: the next command without an environment does not see them.
    const [after] = await viaDriver(['/usr/bin/printenv GRAYWAVE_HOST']);
    expect(after!.status).toBe(1);
    // Still one process per plain command: the PID the driver reports is the program's own (/proc/self/stat's first
    // field), with or without an environment; a `bash -c` or an extra fork would show another PID.
    for (const ex of ['', exports]) {
      const [stat] = await viaDriver(['/bin/cat /proc/self/stat'], ex);
      expect(Number(stat!.stdout.split(' ')[0])).toBe(stat!.pid);
    }
  });

  test('its record of the last command started: kept after a plain EOF (a dropped connection), gone after a quit', async () => {
    const records = (nonce: string) => readdirSync('/tmp').filter((f) => f.startsWith('.graywave-shell-') && f.endsWith(`-${nonce}`));
    const run = (nonce: string, input: string) =>
      new Promise<void>((resolve, reject) => {
        const b = spawn('/bin/bash', ['--norc', '--noprofile', '-c', DRIVER, 'graywave-shell', nonce, '-'], {
          cwd: dir,
          env,
          stdio: ['pipe', 'ignore', 'ignore'],
        });
        b.on('error', reject);
        b.on('close', () => resolve());
        b.stdin.end(input);
      });
    const [dropped, quit] = [`d${process.pid}`, `q${process.pid}`];
    try {
      await run(dropped, '\0/bin/true\0\0/bin/true\0');
      const [kept] = records(dropped);
      expect(readFileSync(join('/tmp', kept!), 'utf8')).toBe('2\n');
      await run(quit, '\0/bin/true\0\0\0');
      expect(records(quit)).toEqual([]);
    } finally {
      for (const f of [...records(dropped), ...records(quit)]) rmSync(join('/tmp', f), { force: true });
    }
  });
});
