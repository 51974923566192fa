import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyFixtureDir } from '../helpers/fixtures.js';
import { describe, expect, it } from 'vitest';
import { cli, hasStackTrace, requireBuiltCli, tempDirs } from '../helpers/cli.js';

/** Hostile train files (issue #18): FILE:LINE:COL, exit 2, nothing run — for the train file and each app's playbook. */
requireBuiltCli();
const tmp = tempDirs('gw-train-bad-');

function withApps(train: string): string {
  const dir = copyFixtureDir('train', tmp());
  writeFileSync(join(dir, 'bad.yaml'), train);
  return dir;
}

async function refused(dir: string, command = 'validate'): Promise<string> {
  const r = await cli(command === 'validate' || command === 'report' ? [command, 'bad.yaml'] : [command, 'bad.yaml', '--yes'], { cwd: dir });
  expect(r.code).toBe(2);
  expect(hasStackTrace(r.stderr)).toBe(false);
  expect(existsSync(join(dir, 'effects.log'))).toBe(false); // nothing ran
  return r.stderr.trim();
}

describe('hostile train files', () => {
  it('a cycle in after: names the cycle', async () => {
    const dir = withApps(`name: t
version: "1"
apps:
  - { name: bfe, playbook: ./bfe.yaml, after: [order] }
  - { name: order, playbook: ./order.yaml, after: [account] }
  - { name: account, playbook: ./account.yaml, after: [bfe] }
`);
    expect(await refused(dir)).toBe(
      "bad.yaml:4:47: apps wait for each other in a cycle: bfe → order → account → bfe (an app's part of a wave starts after the apps in its after:)",
    );
    expect(await refused(dir, 'run')).toContain('cycle: bfe → order → account → bfe');
    // `report` of a train reads the train file the same way (not as a playbook): its problems, exit 2.
    expect(await refused(dir, 'report')).toBe(
      "bad.yaml:4:47: apps wait for each other in a cycle: bfe → order → account → bfe (an app's part of a wave starts after the apps in its after:)",
    );
  });

  it('an unknown app, a missing playbook, an unknown key and hosts/steps in a train: every problem at its place', async () => {
    const dir = withApps(`name: t
version: "1"
apps:
  - { name: bfe, playbook: ./bfe.yaml }
  - { name: order, playbook: ./order.yaml, after: [acount] }
  - { name: account, playbook: ./nope.yaml }
waves: { canary: 1, sise: 25% }
steps: []
`);
    expect((await refused(dir)).split('\n')).toEqual([
      'bad.yaml:5:52: unknown app "acount" in after (did you mean "account"?) (apps: bfe, order, account)',
      'bad.yaml:6:32: cannot read ./nope.yaml: no such file',
      'bad.yaml:7:21: unknown key "sise" in waves (did you mean "size"?)',
      "bad.yaml:8:1: a train (a playbook with apps:) has no steps: each app's playbook names its own",
    ]);
    expect(await refused(dir, 'report')).toContain('bad.yaml:6:32: cannot read ./nope.yaml: no such file');
  });

  it('an invalid app playbook fails the whole train before anything runs, with the app file name', async () => {
    const dir = withApps(`name: t
version: "1"
apps:
  - { name: bfe, playbook: ./bfe.yaml }
  - { name: order, playbook: ./order.yaml }
`);
    writeFileSync(join(dir, 'order.yaml'), readFileSync(join(dir, 'order.yaml'), 'utf8').replace('name: order\n', 'name: order\nbogus: 1\n'));
    expect((await refused(dir, 'run')).split('\n')).toEqual([
      'bad.yaml:5:30: app order: ./order.yaml has 1 problem (listed with its file name)',
      'order.yaml:5:1: unknown key "bogus"',
    ]);
  });

  it('duplicate app names and an app waiting for itself', async () => {
    const dir = withApps(`name: t
version: "1"
apps:
  - { name: bfe, playbook: ./bfe.yaml, after: [bfe] }
  - { name: bfe, playbook: ./order.yaml }
`);
    expect((await refused(dir)).split('\n')).toEqual(['bad.yaml:4:48: app bfe cannot wait for itself', 'bad.yaml:5:13: duplicate app name "bfe"']);
  });
});
