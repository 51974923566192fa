import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { buildPlan } from '../../src/plan/build.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { BIN, cli, requireBuiltCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-inv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(text: string, name = 'p.yaml'): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}
const head = 'name: r\nversion: 2.0.0\nsteps:\n  - run: "true"\n';

describe('inventory from a command', () => {
  it('runs in the playbook directory at load time; its YAML/JSON hosts and labels feed label waves', () => {
    writeFileSync(
      join(dir, 'hosts.json'),
      JSON.stringify({
        hosts: [
          { name: 'z1', address: '127.0.0.1', labels: { zone: 'b' } },
          { name: 'z2', address: '127.0.0.2', labels: { zone: 'a' } },
        ],
      }),
    );
    const pb = loadPlaybook(write(head + 'inventory: { command: "cat hosts.json" }\nwaves: { by: zone, order: [a, b] }\n'));
    expect(pb.hosts.map((h) => h.name)).toEqual(['z1', 'z2']);
    expect(buildPlan(pb).waves.map((w) => w.hosts)).toEqual([['z2'], ['z1']]);
  });

  it('a failing command, or output that is not a host list, is a config error naming the command or the output line', () => {
    const fail = () => loadPlaybook(write(head + 'inventory: { command: "echo boom >&2; exit 3" }\n'));
    expect(fail).toThrow(ConfigError);
    expect(fail).toThrow(/p\.yaml:5:\d+: inventory command `echo boom >&2; exit 3` failed \(exit 3\): boom/);
    expect(() => loadPlaybook(write(head + `inventory: { command: "printf '%s\\n' '- {name: ok, address: 1.2.3.4}' '- {name: bad}'" }\n`))).toThrow(
      /inventory command\):2:\d+: \[1\]\.address: required/,
    );
    expect(() => loadPlaybook(write(head + 'inventory: { provider: nope, service: x }\n'))).toThrow(/unknown provider "nope"/);
  });
});

describe('an inventory file that cannot be read', () => {
  it('an alias bomb is reported once, at the inventory file, and nothing else about the hosts', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 0; i < 8; i++)
      bomb.push(
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9)
          .fill(`*${String.fromCharCode(97 + i)}`)
          .join(',')}]`,
      );
    writeFileSync(join(dir, 'bomb.yaml'), bomb.join('\n') + '\n');
    let err: ConfigError | undefined;
    try {
      loadPlaybook(write(head + 'inventory: bomb.yaml\n'));
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.issues).toHaveLength(1);
    expect(err!.issues[0]!.file).toMatch(/bomb\.yaml$/);
    expect(err!.issues[0]!.message).toMatch(/^cannot read the YAML: .*(alias|resource exhaustion)/i);
    expect(err!.message).not.toMatch(/undefined/);
  });
});

describe('hotfix through the CLI', () => {
  it('run --hotfix --reason: a canary then one wave, skipOnHotfix gates skipped, the reason in the start record', async () => {
    requireBuiltCli();
    const marker = join(dir, 'soak-ran');
    const f = write(
      'name: hf\nversion: 1.0.1\nhosts:\n' +
        [1, 2, 3, 4].map((i) => `  - { name: h${i}, address: 127.0.0.1 }`).join('\n') +
        `\nwaves: { size: 25% }\nsteps:\n  - run: "true"\nverify:\n  - { name: soak, run: "touch ${marker}", skipOnHotfix: true }\n  - { name: smoke, run: "true" }\n`,
      'hf.yaml',
    );
    const plan = await cli(['plan', f, '--json', '--hotfix', '--reason', 'INC-1 checkout down']);
    expect(JSON.parse(plan.stdout)).toMatchObject({
      hotfix: { reason: 'INC-1 checkout down', skippedGates: ['soak'] },
      waves: [{ hosts: ['h1'] }, { hosts: ['h2', 'h3', 'h4'] }],
    });
    expect((await cli(['run', f, '--yes', '--json', '--hotfix', '--state-dir', join(dir, 'state')])).code).toBe(2);
    const r = await cli(['run', f, '--yes', '--json', '--hotfix', '--reason', 'INC-1 checkout down', '--state-dir', join(dir, 'state')]);
    expect(r.code).toBe(0);
    const records = readFileSync(join(dir, 'state', 'hf', 'journal.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(records.find((x) => x.type === 'run' && x.phase === 'start')).toMatchObject({ hotfix: true, reason: 'INC-1 checkout down' });
    expect(records.filter((x) => x.type === 'wave' && x.phase === 'verified')).toHaveLength(2);
    expect(records.filter((x) => x.type === 'gate').map((x) => x.check)).toEqual(['smoke', 'smoke']);
    expect(() => readFileSync(marker)).toThrow();
    void BIN;
  }, 30_000);
});
