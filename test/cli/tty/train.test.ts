/**
 * The live view of a release train in a real terminal (issue #18), through the built CLI in a tmux pane, on
 * fixtures/train (3 apps on the local transport: bfe; order after account; account with deploy: false): each train
 * wave with its hosts grouped by app (`app/host`), the train's check after each wave, the switchover in its wave, the
 * summary; a halt in one app (the others' hosts of that wave finish, the next wave `not started`); `rollback --all`
 * undo per app, newest wave first, the switchover in its place.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyFixtureDir } from '../../helpers/fixtures.js';
import { describe, expect, it } from 'vitest';
import { requireBuiltCli, tempDirs } from '../../helpers/cli.js';
import { requireTmux, terminalsOfThisFile } from './tmux.js';

requireBuiltCli();
requireTmux();
const temp = tempDirs('gw-tty-train-');
const start = terminalsOfThisFile();

const trainDir = (): string => copyFixtureDir('train', temp());

/** The block of lines of the screen from `from` up to (not including) the next line matching `to`. */
function block(screen: string, from: RegExp, to: RegExp): string[] {
  const lines = screen.split('\n');
  const i = lines.findIndex((l) => from.test(l));
  expect(i, `${String(from)} on screen:\n${screen}`).toBeGreaterThanOrEqual(0);
  const j = lines.findIndex((l, k) => k > i && to.test(l));
  return lines.slice(i, j < 0 ? undefined : j).filter((l) => l.trim());
}

// The apps' waves with the train's canary 1 and 25%: bfe 1,2,2; account 1,1,1; order 1,1,1,1 (start order bfe, account, order).
const WAVES = [
  { bfe: ['b-01'], account: ['a-01'], order: ['o-01'] },
  { bfe: ['b-02', 'b-03'], account: ['a-02'], order: ['o-02'] },
  { bfe: ['b-04', 'b-05'], account: ['a-03'], order: ['o-03'] },
  { order: ['o-04'] },
] as Record<string, string[]>[];

describe('the live view of a release train', () => {
  it('each wave shows its hosts grouped by app, the train check, the switchover after wave 2, then done', async () => {
    const dir = trainDir();
    const t = start(['run', 'train.yaml', '--yes'], { cwd: dir });
    expect(await t.exitCode(120_000)).toBe(0);
    const s = t.screen();
    WAVES.forEach((apps, i) => {
      const k = i + 1;
      const hosts = Object.values(apps).flat().length;
      const lines = block(s, new RegExp(`^✔ Wave ${k} \\(${hosts} hosts? of ${Object.keys(apps).length} apps?\\)$`), /^(✔|✖|↓) Wave |^done:/);
      // In start order: each app's line, then its hosts (named app/host), done.
      const expected: RegExp[] = [];
      for (const [app, hs] of Object.entries(apps)) {
        expected.push(new RegExp(`^  ✔ ${app} \\(${hs.length} hosts?\\)$`));
        for (const h of hs) expected.push(new RegExp(`^    ✔ ${app}/${h} done \\(`));
      }
      expect(
        lines.slice(1, 1 + expected.length).map((l, n) => expected[n]!.test(l)),
        lines.join('\n'),
      ).toEqual(expected.map(() => true));
      const rest = lines.slice(1 + expected.length);
      expect(rest[0], lines.join('\n')).toBe('  ✔ verify green-everywhere: ok (exit 0)');
      // GREEN carries 50% of every app after wave 2 (bfe 3/5, account 2/3, order 2/4): the switchover is drawn there.
      if (k === 2) expect(rest[1]).toMatch(/^ {2}✔ switchover done \(/);
      else expect(rest.join('\n')).not.toMatch(/switchover/);
    });
    expect(s).toMatch(/^done: platform-test 2026\.12\.1 on 12 hosts in 4 waves \(/m);
    expect(s).not.toMatch(/not started|HALTED|✖/);
  }, 150_000);

  it('a failure in one app: its host failed under its app, the wave’s other hosts done, the next wave not started; rollback --all undoes per app, newest wave first', async () => {
    const dir = trainDir();
    writeFileSync(join(dir, 'fail-o-03-deploy'), '');
    const t = start(['run', 'train.yaml', '--yes'], { cwd: dir });
    expect(await t.exitCode(120_000)).toBe(1);
    let s = t.screen();
    const w3 = block(s, /^. Wave 3 \(4 hosts of 3 apps\)$/, /^(✔|✖|↓) Wave |^HALTED/).join('\n');
    expect(w3).toMatch(/^ {4}✔ bfe\/b-04 done/m);
    expect(w3).toMatch(/^ {4}✔ bfe\/b-05 done/m);
    expect(w3).toMatch(/^ {4}✔ account\/a-03 done/m);
    expect(w3).toMatch(/^ {4}✖ order\/o-03 › deploy failed$/m);
    expect(w3).not.toMatch(/verify green-everywhere/); // the train's check runs only when every app's part is done
    expect(s).toMatch(/^↓ Wave 4 \(1 host of 1 app\): not started$/m);
    expect(s).toMatch(/^HALTED: train wave 3: app order: /m);
    expect(s).not.toMatch(/^done:/m);

    const r = start(['rollback', 'train.yaml', '--all', '--yes'], { cwd: dir });
    expect(await r.exitCode(120_000)).toBe(0);
    s = r.screen();
    const order = ['Undo wave 3', 'switchover: undid web-to-green', 'Undo wave 2', 'Undo wave 1'].map((x) => s.indexOf(x));
    expect(
      order.every((p) => p >= 0),
      s,
    ).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    // Inside a wave, consumers before the apps they call: order (after account) first, bfe last.
    const u3 = block(s, /^✔ Undo wave 3 \(4 hosts\)$/, /^✔ switchover/);
    expect(u3.filter((l) => /^ {2}\S/.test(l))).toEqual(['  ✔ order (1 host)', '  ✔ account (1 host)', '  ✔ bfe (2 hosts)']);
    for (const h of ['order/o-03', 'account/a-03', 'bfe/b-04', 'bfe/b-05']) expect(u3.join('\n')).toMatch(new RegExp(`^ {4}✔ ${h} rolled back`, 'm'));
    expect(s).toMatch(/^rollback done in /m);
  }, 200_000);

  it('an app whose part waits for its after: apps says so on its host lines until they start', async () => {
    const dir = trainDir();
    // account's relabel takes 2 s: order (after account) visibly waits in each wave.
    const account = join(dir, 'account.yaml');
    writeFileSync(
      account,
      readFileSync(account, 'utf8').replace(`run: "echo 'account {{host.name}} relabel`, `run: "sleep 2 && echo 'account {{host.name}} relabel`),
    );
    const t = start(['run', 'train.yaml', '--yes'], { cwd: dir });
    const live = await t.waitFor(/order\/o-01 › waiting for account/, 60_000);
    expect(live).toMatch(/^ {4}. order\/o-01 › waiting for account$/m);
    expect(live).not.toMatch(/(bfe|account)\/\S+ › waiting/);
    expect(await t.exitCode(120_000)).toBe(0);
    const s = t.screen();
    expect(s).toMatch(/^ {4}✔ order\/o-01 done \(/m);
    expect(s).not.toMatch(/waiting for account/); // the final frame shows each host's outcome
  }, 150_000);
});
