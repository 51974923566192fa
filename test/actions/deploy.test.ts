import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { deployAction, type DeploySaved } from '../../src/actions/deploy.js';
import type { StepContext } from '../../src/actions/types.js';
import { ProviderError } from '../../src/errors.js';
import type { Host } from '../../src/playbook/types.js';
import { LocalTransport } from '../../src/transport/local.js';
import type { ExecOptions, RemoteFiles, Transport } from '../../src/transport/types.js';
import { render, renderShell } from '../../src/util/template.js';
import { makeHost, makePlaybook } from '../helpers/contexts.js';
import { removeDir, tempDir } from '../integration/helpers/process.js';

/** A transport that counts uploads, records the commands it runs, and can corrupt uploads (to test the checksum check). */
class CountingTransport extends LocalTransport {
  uploads = 0;
  corrupt = false;
  commands: string[] = [];
  override async upload(host: Host, from: string, to: string): Promise<void> {
    this.uploads++;
    await super.upload(host, from, to);
    if (this.corrupt) writeFileSync(to, 'garbage');
  }
  override exec(host: Host, command: string, opts?: ExecOptions) {
    this.commands.push(command);
    return super.exec(host, command, opts);
  }
}

/** The same transport without `files`: deploy goes through the shell (as over SSH without SFTP, or with sudo). */
function withoutFiles(t: CountingTransport): Transport {
  return { exec: (h, c, o) => t.exec(h, c, o), upload: (h, l, r) => t.upload(h, l, r), release: () => t.release(), close: () => t.close() };
}

function makeArtifact(dir: string, version: string): string {
  const src = join(dir, `src-${version}`);
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'app.txt'), `app ${version}\n`);
  mkdirSync(join(dir, 'build'), { recursive: true });
  const out = join(dir, 'build', `app-${version}.tar.gz`);
  execFileSync('tar', ['-czf', out, '-C', src, '.']);
  return out;
}

function ctxFor(opts: { dir: string; version: string; transport: Transport; host?: Host }): StepContext & { lines: string[]; progressLines: string[] } {
  const host = opts.host ?? makeHost('app-01', 'local', { vars: { root: join(opts.dir, 'host') } });
  const values = { release: 'r1', version: opts.version, group: 'GREEN', host };
  const lines: string[] = [];
  const progressLines: string[] = [];
  const signal = new AbortController().signal;
  return {
    host,
    playbook: makePlaybook({ dir: opts.dir, version: opts.version, hosts: [host] }),
    wave: 1,
    step: 'deploy',
    transport: opts.transport,
    signal,
    render: (t, over) => render(t, { ...values, ...over }),
    renderShell: (t, over) => renderShell(t, { ...values, ...over }),
    sh: (command, o) => opts.transport.exec(host, command, { timeoutMs: o?.timeoutMs, input: o?.input, signal }),
    provider: () => {
      throw new Error('no providers');
    },
    monitor: () => {
      throw new Error('no monitors');
    },
    savedOf: () => undefined,
    progress: (o) => void progressLines.push(o),
    log: (l) => void lines.push(l),
    deadline: Infinity,
    lines,
    progressLines,
  };
}

describe.each([{ way: 'files' }, { way: 'shell' }])('deploy action (local transport, temp dir, the $way way)', ({ way }) => {
  let dir: string;
  let root: string;
  const counting = new CountingTransport();
  const t = Object.assign(way === 'files' ? counting : withoutFiles(counting), { counting });
  const base = {
    artifact: 'build/app-{{version}}.tar.gz',
    to: '{{host.vars.root}}/opt/app',
    start: 'echo "{{version}} {{group}}" >> {{host.vars.root}}/starts.log',
  };
  const params = (extra: object = {}) => deployAction.params.parse({ ...base, ...extra });
  const deploy = async (version: string, extra: object = {}) => (await deployAction.do(ctxFor({ dir, version, transport: t }), params(extra))) as DeploySaved;
  const app = () => join(root, 'opt', 'app');
  const starts = () => readFileSync(join(root, 'starts.log'), 'utf8').trim().split('\n');

  beforeAll(() => {
    dir = tempDir('deploy');
    root = join(dir, 'host');
    mkdirSync(root);
    for (const v of ['1.0.0', '2.0.0', '3.0.0', '4.0.0']) makeArtifact(dir, v);
  });
  afterAll(() => removeDir(dir));

  test('first release: unpacked into releases/<version>, current points at it, start runs with {{group}}', async () => {
    const saved = await deploy('1.0.0');
    expect(saved).toMatchObject({ to: app(), release: join(app(), 'releases/1.0.0'), previous: null });
    expect(saved.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(readlinkSync(join(app(), 'current'))).toBe(join(app(), 'releases/1.0.0'));
    expect(readFileSync(join(app(), 'current/app.txt'), 'utf8')).toBe('app 1.0.0\n');
    expect(starts()).toEqual(['1.0.0 GREEN']);
    expect(t.counting.uploads).toBe(1);
    expect(readdirSync('/tmp').filter((f) => f.startsWith(`graywave-app-01-${saved.sha256.slice(0, 16)}`))).toEqual([]); // upload cleaned up
  });

  test('next release switches current atomically and remembers the previous one', async () => {
    const saved = await deploy('2.0.0');
    expect(saved.previous).toBe(join(app(), 'releases/1.0.0'));
    expect(lstatSync(join(app(), 'current')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(app(), 'current'))).toBe(join(app(), 'releases/2.0.0'));
    // The classic `ln -sfn` into an existing dir link would have left a link inside the old release.
    expect(existsSync(join(app(), 'releases/1.0.0/2.0.0'))).toBe(false);
    expect(readdirSync(app()).filter((f) => f.startsWith('.current'))).toEqual([]);
  });

  test('repeating the step (resume/retry) skips the upload and keeps the real previous release', async () => {
    const before = t.counting.uploads;
    const saved = await deploy('2.0.0');
    expect(t.counting.uploads).toBe(before);
    expect(saved.previous).toBe(join(app(), 'releases/1.0.0'));
    const c = ctxFor({ dir, version: '2.0.0', transport: t });
    await deployAction.do(c, params());
    expect(c.lines.join('\n')).toMatch(/upload skipped/);
  });

  test('undo points current back to the previous release and starts it again, with {{version}} the version live again', async () => {
    const saved = await deploy('2.0.0');
    const c = ctxFor({ dir, version: '2.0.0', transport: t });
    await deployAction.undo!(c, params(), saved);
    expect(readlinkSync(join(app(), 'current'))).toBe(join(app(), 'releases/1.0.0'));
    expect(readFileSync(join(app(), 'current/app.txt'), 'utf8')).toBe('app 1.0.0\n');
    expect(starts().at(-1)).toBe('1.0.0 GREEN'); // start ran again (after the switch back), for 1.0.0
    await deployAction.undo!(c, params(), saved); // idempotent
    expect(readlinkSync(join(app(), 'current'))).toBe(join(app(), 'releases/1.0.0'));
  });

  test('keep prunes old releases but never the live or the previous one', async () => {
    await deploy('2.0.0', { keep: 2 });
    await deploy('3.0.0', { keep: 2 });
    await deploy('4.0.0', { keep: 2 });
    expect(readdirSync(join(app(), 'releases')).sort()).toEqual(['3.0.0', '4.0.0']);
    const saved = await deploy('4.0.0', { keep: 1 });
    expect(readdirSync(join(app(), 'releases')).sort()).toEqual(['3.0.0', '4.0.0']); // previous kept for undo
    expect(saved.previous).toBe(join(app(), 'releases/3.0.0'));
  });

  test('a corrupted upload fails with a checksum mismatch', async () => {
    makeArtifact(dir, '5.0.0');
    t.counting.corrupt = true;
    try {
      await expect(deploy('5.0.0')).rejects.toThrow(/checksum mismatch on app-01 after upload of app-5\.0\.0\.tar\.gz/);
    } finally {
      t.counting.corrupt = false;
    }
    expect(readlinkSync(join(app(), 'current'))).toBe(join(app(), 'releases/4.0.0'));
    expect(readdirSync(app()).filter((f) => f.startsWith('.current.graywave-'))).toEqual([]); // no half-made switch left
    expect(readdirSync('/tmp').filter((f) => f.startsWith('graywave-app-01-') && f.endsWith('app-5.0.0.tar.gz'))).toEqual([]);
  });

  test('a missing artifact is a non-retryable error', async () => {
    const err = await deploy('9.9.9').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).retryable).toBe(false);
    expect((err as Error).message).toMatch(/artifact .*app-9\.9\.9\.tar\.gz cannot be read/);
  });

  test('healthy.http is polled from the host until it answers 2xx', async () => {
    let hits = 0;
    const srv = http.createServer((_req, res) => {
      hits++;
      res.statusCode = hits < 3 ? 503 : 200;
      res.end();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    try {
      const c = ctxFor({ dir, version: '4.0.0', transport: t });
      await deployAction.do(c, params({ healthy: { http: `http://127.0.0.1:${port}/health`, timeout: '20s' } }));
      expect(hits).toBe(3);
      expect(c.progressLines[0]).toMatch(/not healthy yet \(HTTP 503\)/);
    } finally {
      srv.close();
    }
  });

  test('a command that never turns healthy fails the step after healthy.timeout', async () => {
    const start = Date.now();
    await expect(deploy('4.0.0', { healthy: { command: 'test -f {{host.vars.root}}/never', timeout: '1500ms' } })).rejects.toThrow(
      /app-01 not healthy after 1500 ms \(test -f .*never: exit 1\)/,
    );
    expect(Date.now() - start).toBeGreaterThanOrEqual(1500);
    expect(Date.now() - start).toBeLessThan(15_000); // generous: it gives up at its timeout
  });

  test('params are strict and `to` must be absolute', () => {
    expect(() => deployAction.params.parse({ ...base, kep: 3 })).toThrow();
    expect(() => deployAction.params.parse({ ...base, to: 'relative/dir' })).toThrow(/absolute/);
    expect(deployAction.params.parse(base).keep).toBe(5);
  });
});

/** Every path under `root` with what it is: a file's content, a link's target (with `root` as `<root>`), a dir. */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = join(root, rel, name);
      const r = join(rel, name).replace(/\.current\.graywave-\w+$/, '.current.graywave-TMP');
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.push(`${r} -> ${readlinkSync(p).split(root).join('<root>')}`);
      else if (st.isDirectory()) {
        out.push(`${r}/`);
        walk(join(rel, name));
      } else out.push(`${r}: ${readFileSync(p, 'utf8').split(root).join('<root>')}`);
    }
  };
  walk('');
  return out;
}

/**
 * The transport seen over a link with a long round trip: every file request and every command waits for the next
 * round, and all those sent before it go out together. `rounds` is then the number of round trips a deploy waits
 * for in a row, which is what a host's deploy costs on a WAN link whatever the host's speed.
 */
class RoundsTransport extends CountingTransport {
  rounds = 0;
  private queue: (() => void)[] = [];
  private inRound<T>(run: () => Promise<T>): Promise<T> {
    return new Promise<T>((res, rej) => {
      if (!this.queue.length)
        setTimeout(() => {
          const q = this.queue;
          this.queue = [];
          this.rounds++;
          for (const go of q) go();
        }, 5);
      this.queue.push(() => void run().then(res, rej));
    });
  }
  override exec(host: Host, command: string, opts?: ExecOptions) {
    return this.inRound(() => super.exec(host, command, opts));
  }
  override async files(host: Host, opts?: { sudo?: boolean }): Promise<RemoteFiles | undefined> {
    const f = await super.files(host, opts);
    if (!f) return undefined;
    const r =
      <A extends unknown[], T>(fn: (...a: A) => Promise<T>) =>
      (...a: A) =>
        this.inRound(() => fn.apply(f, a));
    return {
      via: f.via,
      mtimeStepMs: f.mtimeStepMs,
      read: r(f.read),
      readlink: r(f.readlink),
      kind: r(f.kind),
      write: r(f.write),
      mkdirp: r(f.mkdirp),
      rename: r(f.rename),
      symlink: r(f.symlink),
      unlink: r(f.unlink),
      list: r(f.list),
    };
  }
}

describe('deploy through RemoteFiles (local transport): no process but the checksum', () => {
  let dir: string;
  const t = new CountingTransport();
  const jar = (version: string) => {
    mkdirSync(join(dir, 'build'), { recursive: true });
    writeFileSync(join(dir, 'build', `app-${version}.jar`), `jar ${version}\n`);
  };
  const ctx = (version: string, root: string, transport: Transport = t) =>
    ctxFor({ dir, version, transport, host: makeHost('app-01', 'local', { vars: { root } }) });
  const params = (extra: object = {}) => deployAction.params.parse({ artifact: 'build/app-{{version}}.jar', to: '{{host.vars.root}}/opt/app', ...extra });

  beforeAll(() => {
    dir = tempDir('deploy-files');
    for (const v of ['1.0.0', '2.0.0', '3.0.0', '4.0.0']) jar(v);
  });
  afterAll(() => removeDir(dir));

  test('a release of a plain file runs one command on the host, `sha256sum FILE` in plain words; the log names each file operation', async () => {
    const root = join(dir, 'one');
    t.commands = [];
    const c = ctx('1.0.0', root);
    const saved = (await deployAction.do(c, params())) as DeploySaved;
    expect(t.commands).toHaveLength(1);
    expect(t.commands[0]).toMatch(/^sha256sum \/tmp\/graywave-app-01-[0-9a-f]{16}-app-1\.0\.0\.jar$/);
    // What the remote shell's driver execs without a bash (see DRIVER: letters, digits, `_./,:=@%+-` and spaces).
    expect(t.commands[0]).toMatch(/^[A-Za-z0-9_./,:=@%+ -]+$/);
    expect(readlinkSync(join(root, 'opt/app/current'))).toBe(join(root, 'opt/app/releases/1.0.0'));
    expect(readFileSync(join(root, 'opt/app/current/app-1.0.0.jar'), 'utf8')).toBe('jar 1.0.0\n');
    expect(readFileSync(join(root, 'opt/app/releases/1.0.0/.graywave-sha256'), 'utf8')).toBe(`${saved.sha256}\n`);
    const ops = c.lines.filter((l) => l.startsWith('deploy: fs '));
    const at = (re: RegExp) => ops.findIndex((l) => re.test(l));
    expect(at(/^deploy: fs rename \/tmp\/graywave-app-01-\S+ -> \S+\/releases\/1\.0\.0\.graywave-tmp\/app-1\.0\.0\.jar$/)).toBeGreaterThan(-1);
    // current is switched by a link under a temp name renamed over it: never missing for a reader.
    const link = at(/^deploy: fs symlink \S+\/opt\/app\/\.current\.graywave-\w+ -> \S+\/releases\/1\.0\.0$/);
    const rename = at(/^deploy: fs rename \S+\/opt\/app\/\.current\.graywave-\w+ -> \S+\/opt\/app\/current$/);
    expect(link).toBeGreaterThan(-1);
    expect(rename).toBeGreaterThan(link);
    // ... and only once the release is in place (the link itself is made while it is put there).
    expect(rename).toBeGreaterThan(at(/^deploy: fs rename \S+\/releases\/1\.0\.0\.graywave-tmp -> \S+\/releases\/1\.0\.0$/));
    expect(at(/^deploy: fs rename \S+\/releases\/1\.0\.0\.graywave-tmp -> /)).toBeGreaterThan(at(/^deploy: fs write \S+\.graywave-tmp\/\.graywave-sha256: /));
    // Repeated: the marker matches, nothing runs at all.
    t.commands = [];
    await deployAction.do(ctx('1.0.0', root), params());
    expect(t.commands).toEqual([]);
  });

  test('requests that do not wait for each other go out together: a release waits 5 round trips besides its upload', async () => {
    const root = join(dir, 'rounds');
    const slow = new RoundsTransport();
    const rounds = async (version: string) => {
      slow.rounds = 0;
      await deployAction.do(ctx(version, root, slow), params({ keep: 1 }));
      return slow.rounds;
    };
    // The probe (the state's reads together), the checksum with the new dir, the move with the marker, the record and
    // the new link, the release into place, the switch with the prune's listing: 5, each file operation one request
    // here (over SFTP a read or a write of a file is two, a listing three).
    expect(await rounds('1.0.0')).toBe(5); // one after another, as before: 10
    // The next release: the same, with a record of the previous release to write (and keep 1 keeps that one too).
    expect(await rounds('2.0.0')).toBe(5);
    expect(readlinkSync(join(root, 'opt/app/current'))).toBe(join(root, 'opt/app/releases/2.0.0'));
    expect(readFileSync(join(root, 'opt/app/releases/2.0.0/.graywave-previous'), 'utf8')).toBe(`${join(root, 'opt/app/releases/1.0.0')}\n`);
  });

  test('an earlier upload (resume) is hashed once by the probe and not uploaded again; a leftover unpack dir is removed', async () => {
    const root = join(dir, 'resume');
    const sha = ((await deployAction.do(ctx('1.0.0', root), params())) as DeploySaved).sha256;
    const upload = `/tmp/graywave-app-01-${sha.slice(0, 16)}-app-2.0.0.jar`;
    const { copyFileSync } = await import('node:fs');
    const sha2 = execFileSync('sha256sum', [join(dir, 'build/app-2.0.0.jar')], { encoding: 'utf8' }).split(' ')[0]!;
    const upload2 = upload.replace(sha.slice(0, 16), sha2.slice(0, 16));
    copyFileSync(join(dir, 'build/app-2.0.0.jar'), upload2);
    mkdirSync(join(root, 'opt/app/releases/2.0.0.graywave-tmp/junk'), { recursive: true });
    const before = t.uploads;
    t.commands = [];
    const c = ctx('2.0.0', root);
    await deployAction.do(c, params());
    expect(t.uploads).toBe(before);
    expect(c.lines.join('\n')).toMatch(/already uploaded \(sha256 matches\): upload skipped/);
    expect(t.commands).toEqual([`sha256sum ${upload2}`, `rm -rf ${join(root, 'opt/app/releases/2.0.0.graywave-tmp')}`]);
    expect(readdirSync(join(root, 'opt/app/releases/2.0.0')).sort()).toEqual(['.graywave-previous', '.graywave-sha256', 'app-2.0.0.jar']);
    expect(existsSync(upload2)).toBe(false);
  });

  test.skipIf(!existsSync('/dev/shm'))('where /tmp is another filesystem the upload is moved in by one `mv -f`', async () => {
    const root = mkdtempSync('/dev/shm/gw-deploy-xfs-');
    try {
      t.commands = [];
      const c = ctx('1.0.0', root);
      await deployAction.do(c, params());
      expect(c.lines.join('\n')).toMatch(/EXDEV.*moving it with mv/);
      expect(t.commands[1]).toMatch(/^mv -f \/tmp\/graywave-app-01-\S+ \/dev\/shm\/\S+\/releases\/1\.0\.0\.graywave-tmp\/app-1\.0\.0\.jar$/);
      expect(readFileSync(join(root, 'opt/app/current/app-1.0.0.jar'), 'utf8')).toBe('jar 1.0.0\n');
    } finally {
      removeDir(root);
    }
  });

  test('prune goes by modification time, not by name, and removes with one `rm -rf`; equal times at the cut ask the shell', async () => {
    const root = join(dir, 'prune');
    const rel = join(root, 'opt/app/releases');
    for (const v of ['1.0.0', '2.0.0', '3.0.0']) await deployAction.do(ctx(v, root), params({ keep: 5 }));
    // Oldest by time: 3.0.0 (though the live one), then 1.0.0; 2.0.0 is the newest.
    const { utimesSync } = await import('node:fs');
    utimesSync(join(rel, '3.0.0'), 1000, 1000);
    utimesSync(join(rel, '1.0.0'), 2000, 2000);
    utimesSync(join(rel, '2.0.0'), 3000, 3000);
    t.commands = [];
    await deployAction.do(ctx('4.0.0', root), params({ keep: 2 }));
    // Newest two by time: 4.0.0 (now), 2.0.0; 3.0.0 is the previous release (kept for undo); 1.0.0 goes.
    expect(readdirSync(rel).sort()).toEqual(['2.0.0', '3.0.0', '4.0.0']);
    expect(t.commands.filter((c) => c.startsWith('rm '))).toEqual([`rm -rf -- ${join(rel, '1.0.0')}`]);
    // Two releases of the same time at the cut: the host's `ls -t` decides (by name among equals), as on the shell way.
    utimesSync(join(rel, '2.0.0'), 5000, 5000);
    utimesSync(join(rel, '4.0.0'), 5000, 5000);
    utimesSync(join(rel, '3.0.0'), 4000, 4000);
    mkdirSync(join(rel, '0.9.0'));
    utimesSync(join(rel, '0.9.0'), 100, 100);
    t.commands = [];
    await deployAction.do(ctx('4.0.0', root), params({ keep: 1 }));
    expect(t.commands.some((c) => c.includes('ls -1t'))).toBe(true);
    expect(readdirSync(rel).sort()).toEqual(['2.0.0', '3.0.0', '4.0.0']);
  });

  test('the files way and the shell way leave the same tree after the same releases, re-runs, prunes and undos', async () => {
    const run = async (root: string, transport: Transport) => {
      const steps: [string, object][] = [
        ['1.0.0', {}],
        ['2.0.0', {}],
        ['2.0.0', {}],
        ['3.0.0', { keep: 2 }],
        ['4.0.0', { keep: 2 }],
      ];
      let saved: unknown;
      for (const [v, extra] of steps) saved = await deployAction.do(ctx(v, root, transport), params(extra));
      await deployAction.undo!(ctx('4.0.0', root, transport), params({ keep: 2 }), saved);
      await deployAction.do(ctx('4.0.0', root, transport), params({ keep: 2 }));
      await deployAction.undo!(ctx('4.0.0', root, transport), params({ keep: 2 }), undefined); // read back from the host
      return tree(root);
    };
    const files = await run(join(dir, 'same-files'), t);
    const shell = await run(join(dir, 'same-shell'), withoutFiles(t));
    expect(files).toEqual(shell);
    expect(files).toContain('opt/app/current -> <root>/opt/app/releases/3.0.0');
  });
});
