import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyFixtureDir } from '../helpers/fixtures.js';
import { describe, expect, it } from 'vitest';
import { cli, requireBuiltCli, tempDirs } from '../helpers/cli.js';

/**
 * `graywave check TRAIN`: each app's preflight (its playbook as the train runs it), one table per app, exit codes as
 * for one playbook (0 all pass, 1 any problem, 2 invalid file or usage). Built CLI on fixtures/train (local transport).
 */
requireBuiltCli();
const tmp = tempDirs('gw-check-train-');

const trainDir = (): string => copyFixtureDir('train', tmp());

/** Adds a `deploy:` step whose artifact does not exist to an app's playbook (before its relabel step). */
function addMissingArtifact(dir: string, app: string): void {
  const f = join(dir, `${app}.yaml`);
  writeFileSync(
    f,
    readFileSync(f, 'utf8').replace(
      '  - name: relabel\n',
      `  - name: upload\n    deploy: { artifact: "./build/${app}-{{version}}.tar.gz", to: /opt/gw-test-${app} }\n  - name: relabel\n`,
    ),
  );
}

describe('graywave check on a train file', () => {
  it('runs every app’s preflight and prints one table per app: exit 0, nothing changed', async () => {
    const dir = trainDir();
    const r = await cli(['check', 'train.yaml'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    // In start order (order after account), each app's own hosts.
    const heads = [...r.stdout.matchAll(/^app (\w+) \((\S+)\):$/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(heads).toEqual(['bfe bfe.yaml', 'account account.yaml', 'order order.yaml']);
    const order = r.stdout.slice(r.stdout.indexOf('app order'));
    for (const h of ['o-01', 'o-02', 'o-03', 'o-04']) expect(order).toMatch(new RegExp(`^${h} +ok$`, 'm'));
    expect(r.stdout).toContain('train platform-test: preflight passed for every app (bfe, account, order): nothing was changed');
    expect(existsSync(join(dir, 'effects.log'))).toBe(false);
    expect(existsSync(join(dir, '.graywave'))).toBe(false);
  });

  it('an app whose preflight fails: its problem under its table, the others pass, exit 1; an app with deploy: false is not asked for its artifact', async () => {
    const dir = trainDir();
    addMissingArtifact(dir, 'order');
    addMissingArtifact(dir, 'account'); // deploy: false in the train: its deploy step does not run, so not asked
    const r = await cli(['check', 'train.yaml'], { cwd: dir });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const order = r.stdout.slice(r.stdout.indexOf('app order'));
    const account = r.stdout.slice(r.stdout.indexOf('app account'), r.stdout.indexOf('app order'));
    expect(order).toMatch(/^o-01 +ok +FAIL +-$/m);
    expect(order).toMatch(/^8 problem\(s\):$/m);
    expect(order).toMatch(/^ {2}o-01 artifact: .*order-3\.4\.1\.tar\.gz/m);
    expect(account).toContain('preflight passed: nothing was changed');
    expect(account).not.toContain('artifact');
    expect(r.stdout).toContain('train platform-test: problems in order');
    expect(r.stderr).toContain('preflight: 8 problem(s) in app order; nothing was changed');
    expect(existsSync(join(dir, 'effects.log'))).toBe(false);

    const j = await cli(['check', 'train.yaml', '--json'], { cwd: dir });
    expect(j.code).toBe(1);
    const report = JSON.parse(j.stdout) as { ok: boolean; apps: { app: string; ok: boolean; cells: { host: string; check: string; ok: boolean }[] }[] };
    expect(report.ok).toBe(false);
    expect(report.apps.map((a) => [a.app, a.ok])).toEqual([
      ['bfe', true],
      ['account', true],
      ['order', false],
    ]);
    expect(report.apps[2]!.cells.filter((c) => !c.ok).map((c) => `${c.host} ${c.check}`)).toEqual([
      'o-01 artifact',
      'o-01 space',
      'o-02 artifact',
      'o-02 space',
      'o-03 artifact',
      'o-03 space',
      'o-04 artifact',
      'o-04 space',
    ]);
  });

  it('--hosts takes app/host names (only those asked); an unknown one and an invalid train file are exit 2', async () => {
    const dir = trainDir();
    addMissingArtifact(dir, 'order');
    const r = await cli(['check', 'train.yaml', '--hosts', 'bfe/b-02,order/o-03', '--json'], { cwd: dir });
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { apps: { app: string; hosts: string[] }[] };
    expect(report.apps.map((a) => `${a.app}:${a.hosts.join(',')}`)).toEqual(['bfe:b-02', 'order:o-03']);
    const unknown = await cli(['check', 'train.yaml', '--hosts', 'order/o-09'], { cwd: dir });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown host(s) order/o-09');
    writeFileSync(join(dir, 'train.yaml'), readFileSync(join(dir, 'train.yaml'), 'utf8').replace('after: [account]', 'after: [acount]'));
    const bad = await cli(['check', 'train.yaml'], { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/train\.yaml:\d+:\d+: unknown app "acount" in after/);
  });
});
