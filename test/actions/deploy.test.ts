import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { deployAction, type DeploySaved } from '../../src/actions/deploy.js';
import type { StepContext } from '../../src/actions/types.js';
import { ProviderError } from '../../src/errors.js';
import type { Host } from '../../src/playbook/types.js';
import { LocalTransport } from '../../src/transport/local.js';
import type { Transport } from '../../src/transport/types.js';
import { render, renderShell } from '../../src/util/template.js';
import { makeHost, makePlaybook } from '../helpers/contexts.js';
import { removeDir, tempDir } from '../integration/helpers/process.js';

/** A transport that counts uploads and can corrupt them (to test the checksum check). */
class CountingTransport extends LocalTransport {
  uploads = 0;
  corrupt = false;
  override async upload(host: Host, from: string, to: string): Promise<void> {
    this.uploads++;
    await super.upload(host, from, to);
    if (this.corrupt) writeFileSync(to, 'garbage');
  }
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

describe('deploy action (local transport, temp dir)', () => {
  let dir: string;
  let root: string;
  const t = new CountingTransport();
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
    expect(t.uploads).toBe(1);
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
    const before = t.uploads;
    const saved = await deploy('2.0.0');
    expect(t.uploads).toBe(before);
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
    t.corrupt = true;
    try {
      await expect(deploy('5.0.0')).rejects.toThrow(/checksum mismatch on app-01 after upload of app-5\.0\.0\.tar\.gz/);
    } finally {
      t.corrupt = false;
    }
    expect(readlinkSync(join(app(), 'current'))).toBe(join(app(), 'releases/4.0.0'));
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
