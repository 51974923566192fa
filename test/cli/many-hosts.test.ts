import { describe, expect, it } from 'vitest';
import { cli, hostsYaml, requireBuiltCli, tempDirs, writePlaybook } from '../helpers/cli.js';

/**
 * A fleet larger than Node's default of 10 listeners per AbortSignal: the preflight asks 16 hosts at once and every
 * command in flight listens on the command's signal. A person must not see a "possible memory leak" warning on
 * stderr for a normal fleet (built CLI, local transport).
 */
requireBuiltCli();
const tmp = tempDirs('gw-many-hosts-');

const playbook = (dir: string) =>
  writePlaybook(
    dir,
    `name: many
version: "1.0.0"
group: GREEN
transport: { type: local }
waves: { size: 100%, concurrency: 20 }
hosts:
${hostsYaml(24)}
steps:
  - { name: s, run: "true" }
`,
  );

describe('a fleet of 24 hosts', () => {
  it('check and run print no MaxListenersExceededWarning', async () => {
    const dir = tmp();
    const file = playbook(dir);
    const c = await cli(['check', file], { cwd: dir });
    expect(c.code, c.stdout + c.stderr).toBe(0);
    expect(c.stdout).toContain('preflight passed');
    expect(c.stderr).not.toMatch(/MaxListeners|memory leak/);
    const r = await cli(['run', file, '--yes', '--json', '--state-dir', `${dir}/state`], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('"event":"run.done"');
    expect(r.stderr).not.toMatch(/MaxListeners|memory leak/);
  });
});
