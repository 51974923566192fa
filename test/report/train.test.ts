import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, requireBuiltCli, tempDirs } from '../helpers/cli.js';
import { copyFixtureDir } from '../helpers/fixtures.js';

/**
 * `graywave report TRAIN` (issue #18): the report of a release train from its one journal, on a real run of
 * fixtures/train (three apps on the local transport) through the built CLI, in every format (markdown, --json,
 * --html). The apps' host logs are read where the train writes them (`.graywave/<train>/apps/<app>/logs`).
 */
requireBuiltCli();
const tmp = tempDirs('gw-train-report-');

interface Json {
  release: string;
  status: string;
  train?: {
    apps: {
      name: string;
      status: string;
      done: number;
      hosts: number;
      deploy: boolean;
      after: string[];
      version?: string;
      logDir?: string;
      waves: { wave: number; status: string; hosts: string[] }[];
    }[];
  };
  waves: { wave: number; status: string; hosts: string[]; events: { what: string }[] }[];
  hosts: {
    host: string;
    app?: string;
    wave: number;
    status: string;
    spans: { step: string; result: string; start: string; end?: string }[];
    log?: string;
    logTail?: string[];
  }[];
  gates: { wave: number; check: string; ok: boolean }[];
  failures: { what: string; host?: string; error: string }[];
}

describe('graywave report of a release train', () => {
  it('shows the train per app and wave: hosts with steps, durations and logs, checks, the switchover, a failure and its resume', async () => {
    const dir = copyFixtureDir('train', tmp());
    writeFileSync(join(dir, 'fail-a-02-restore'), '');
    expect((await cli(['run', 'train.yaml', '--yes', '--json'], { cwd: dir })).code).toBe(1);

    const halted = await cli(['report', 'train.yaml', '--json'], { cwd: dir });
    expect(halted.code, halted.stderr).toBe(0);
    let r = JSON.parse(halted.stdout) as Json;
    expect(r.release).toBe('platform-test');
    expect(r.status).toBe('halted');
    expect(r.train!.apps.map((a) => [a.name, a.version, a.deploy, a.after, a.status, `${a.done}/${a.hosts}`])).toEqual([
      ['bfe', '2.0.0', true, [], 'running', '3/5'],
      ['account', '1.0.0', false, [], 'failed', '1/3'],
      ['order', '3.4.1', true, ['account'], 'running', '1/4'],
    ]);
    expect(r.train!.apps[1]!.waves.map((w) => `${w.wave} ${w.status} ${w.hosts.join(',')}`)).toEqual(['1 done a-01', '2 failed a-02', '3 pending a-03']);
    expect(r.waves.map((w) => `${w.wave} ${w.status}`)).toEqual(['1 done', '2 failed', '3 pending', '4 pending']);
    expect(r.waves[1]!.hosts).toEqual(['bfe/b-02', 'bfe/b-03', 'account/a-02', 'order/o-02']);
    const a02 = r.hosts.find((h) => h.host === 'account/a-02')!;
    expect(a02).toMatchObject({ app: 'account', wave: 2, status: 'failed' });
    // deploy: false: account's pipeline has no deploy step.
    expect(a02.spans.map((s) => `${s.step} ${s.result}`)).toEqual(['drain done', 'relabel done', 'restore failed']);
    for (const s of a02.spans) expect(Date.parse(s.end!)).toBeGreaterThanOrEqual(Date.parse(s.start));
    // Its log is the one the train wrote, and the report carries its end (the failing command).
    expect(a02.log).toBe(join(dir, '.graywave', 'platform-test', 'apps', 'account', 'logs', 'a-02.log'));
    expect(existsSync(a02.log!)).toBe(true);
    expect(a02.logTail!.join('\n')).toContain('test ! -e fail-a-02-restore');
    expect(readFileSync(a02.log!, 'utf8')).toContain(a02.logTail!.at(-1)!);
    expect(r.train!.apps[1]!.logDir).toBe(join(dir, '.graywave', 'platform-test', 'apps', 'account', 'logs'));
    expect(r.hosts.find((h) => h.host === 'order/o-02')).toMatchObject({ status: 'pending', spans: [] });
    expect(r.failures.map((f) => f.what)).toContain('account/a-02 restore');
    expect(r.failures.find((f) => f.what === 'release halted')?.error).toMatch(/^train wave 2: app account: /);
    expect(r.gates.map((g) => `${g.wave} ${g.check} ${g.ok}`)).toEqual(['1 green-everywhere true']);

    const md = await cli(['report', 'train.yaml', '--html', 'report.html'], { cwd: dir });
    expect(md.code, md.stderr).toBe(0);
    expect(md.stdout).toContain('# Release train platform-test 2026.12.1');
    expect(md.stdout).toMatch(
      /^\| account \| 1\.0\.0 \| no \(deploy: false\) \| — \| failed \| 1\/3 \| 1 done · 2 failed · 3 pending \| \S+apps\/account\/logs \|$/m,
    );
    expect(md.stdout).toMatch(
      /^\| 2 \| account\/a-02 \| failed \| [^|]+ \| [^|]+ \| drain done \d+ms; relabel done \d+ms; restore failed \d+ms \| \S+a-02\.log \|$/m,
    );
    expect(md.stdout).toContain('### account/a-02 (failed): the end of');
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('<h1>Release train platform-test 2026.12.1</h1>');
    expect(html).toContain('<h2>Apps</h2>');
    for (const w of [1, 2, 3, 4]) expect(html).toContain(`data-wave="${w}"`);
    expect(html).toContain('data-host="account/a-02"');
    expect(html).toMatch(/<details open><summary>account\/a-02 <span class="badge bad">failed<\/span>/);
    expect(html).toMatch(/<details><summary>bfe\/b-01 /);
    expect(html).not.toContain('<script');

    rmSync(join(dir, 'fail-a-02-restore'));
    expect((await cli(['resume', 'train.yaml', '--yes', '--json'], { cwd: dir })).code).toBe(0);
    r = JSON.parse((await cli(['report', 'train.yaml', '--json'], { cwd: dir })).stdout) as Json;
    expect(r.status).toBe('done');
    expect(r.train!.apps.map((a) => `${a.name} ${a.status} ${a.done}/${a.hosts}`)).toEqual(['bfe done 5/5', 'account done 3/3', 'order done 4/4']);
    expect(r.waves.map((w) => w.status)).toEqual(['done', 'done', 'done', 'done']);
    expect(r.hosts).toHaveLength(12);
    // The resumed host: its failed restore, then the retry that passed.
    expect(r.hosts.find((h) => h.host === 'account/a-02')!.spans.map((s) => `${s.step} ${s.result}`)).toEqual([
      'drain done',
      'relabel done',
      'restore failed',
      'restore done',
    ]);
    expect(r.waves[1]!.events.map((e) => e.what)).toEqual(
      expect.arrayContaining(['verified', 'switchover started', 'switchover web-to-green done', 'switchover done']),
    );
    expect(r.gates.map((g) => g.wave)).toEqual([1, 2, 3, 4]);

    // The journal alone (archived, or read without the train file) is reported as a train too, its apps' logs beside it.
    const j = JSON.parse((await cli(['report', join('.graywave', 'platform-test', 'journal.jsonl'), '--json'], { cwd: dir })).stdout) as Json;
    expect(j.train!.apps.map((a) => a.name)).toEqual(['bfe', 'account', 'order']);
    expect(j.hosts.find((h) => h.host === 'order/o-04')?.log).toMatch(/apps\/order\/logs\/o-04\.log$/);
  }, 90_000);
});
