import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ansibleInventory, expandHostPattern, jumpFromSshArgs, pythonLiteral } from '../../src/playbook/ansible.js';
import { removeDir, requireBinary, tempDir } from '../integration/helpers/process.js';
import { ANSIBLE_CORPUS, ANSIBLE_FIXTURES, ANSIBLE_INVENTORY, ansibleList, membersOf, type ListJson } from '../helpers/ansible-oracle.js';

/**
 * Ansible is the oracle: each inventory under fixtures/ansible/ is read by `ansible-inventory -i FILE --list` and
 * by src/playbook/ansible.ts; the same hosts, group memberships and merged variables must come out. The JSON that
 * ansible-inventory prints is itself an inventory graywave accepts: it must give the same result again.
 */
const hasAnsible = requireBinary(ANSIBLE_INVENTORY, 'apt-get install -y ansible-core'); // CI=true: missing is a failure
const FIXTURES = ANSIBLE_FIXTURES;
const CORPUS = ANSIBLE_CORPUS;
const run = promisify(execFile);
let work: string;
beforeAll(() => {
  work = tempDir('ansible-oracle');
});
afterAll(() => removeDir(work));

/** An empty working directory and HOME: no ansible.cfg, no playbook-adjacent group_vars, nothing written elsewhere. */
const oracle = (file: string): Promise<ListJson> => ansibleList(file, work);

function compare(file: string, want: ListJson): void {
  const got = ansibleInventory(file);
  // Hosts and their merged variables.
  const gotVars = Object.fromEntries(got.hosts.map((h) => [h.name, h.vars]));
  const allHosts = membersOf(want, 'all');
  expect(gotVars).toEqual(Object.fromEntries([...allHosts].map((h) => [h, want._meta.hostvars[h] ?? {}])));
  // Group membership (parents included), for every group Ansible shows.
  for (const group of Object.keys(want).filter((k) => k !== '_meta')) {
    const ours = new Set(got.hosts.filter((h) => h.groups.includes(group)).map((h) => h.name));
    expect({ group, hosts: [...ours].sort() }).toEqual({ group, hosts: [...membersOf(want, group)].sort() });
  }
}

describe.skipIf(!hasAnsible)('Ansible inventories read as ansible-inventory --list reads them', () => {
  for (const name of CORPUS) {
    test(name, async () => {
      const file = join(FIXTURES, name);
      const want = await oracle(file);
      expect(membersOf(want, 'all').size).toBeGreaterThan(1);
      compare(file, want);
    });
  }

  test('ansible-inventory --list output is itself an inventory: the same hosts, groups and vars again', async () => {
    for (const name of ['ini-basic/hosts.ini', 'yaml-basic/inventory.yml']) {
      const want = await oracle(join(FIXTURES, name));
      const json = join(work, `${name.replace('/', '_')}.json`);
      writeFileSync(json, JSON.stringify(want, null, 2));
      compare(json, want);
    }
  });

  test('a group selects the hosts `ansible GROUP --list-hosts` lists, in its order', async () => {
    const cwd = join(work, 'cwd');
    mkdirSync(cwd, { recursive: true });
    const cases = [
      ['ini-basic/hosts.ini', 'dc1'],
      ['ini-dirs/hosts', 'app'],
      ['yaml-basic/inventory.yml', 'all'],
      ['yaml-basic/inventory.yml', 'web'],
    ] as const;
    const outputs = await Promise.all(
      cases.map(([name, group]) =>
        run('/usr/bin/ansible', [group, '-i', join(FIXTURES, name), '--list-hosts'], {
          cwd,
          env: { ...process.env, HOME: cwd, ANSIBLE_INVENTORY_ENABLED: 'yaml,ini' },
        }),
      ),
    );
    cases.forEach(([name, group], i) => {
      const want = outputs[i]!.stdout.split('\n')
        .slice(1)
        .map((l) => l.trim())
        .filter(Boolean);
      expect({ name, group, hosts: ansibleInventory(join(FIXTURES, name), group).hosts.map((h) => h.name) }).toEqual({ name, group, hosts: want });
    });
  });

  test('group_vars/host_vars are read next to the inventory, wherever it is copied', async () => {
    const copy = join(work, 'copy');
    cpSync(join(FIXTURES, 'ini-dirs'), copy, { recursive: true });
    writeFileSync(join(copy, 'host_vars', 'app2'), 'level: host-app2-no-extension\n');
    const want = await oracle(join(copy, 'hosts'));
    expect(want._meta.hostvars.app2!.level).toBe('host-app2-no-extension');
    compare(join(copy, 'hosts'), want);
  });
});

/**
 * Sources only Ansible reads (a script, a plugin configuration, a directory mixing an INI file and a constructed
 * plugin): graywave runs ansible-inventory itself and reads its JSON. The oracle is the same tool run here with
 * Ansible's default plugins; the comparison checks what graywave makes of that JSON (hosts, groups, merged vars).
 */
async function toolOracle(file: string): Promise<ListJson> {
  const cwd = join(work, 'cwd');
  mkdirSync(cwd, { recursive: true });
  const { stdout } = await run(ANSIBLE_INVENTORY, ['-i', file, '--list'], {
    cwd,
    env: { ...process.env, HOME: cwd, ANSIBLE_INVENTORY_UNPARSED_FAILED: 'true' },
    maxBuffer: 16 << 20,
  });
  return JSON.parse(stdout) as ListJson;
}

describe.skipIf(!hasAnsible)('inventory scripts, plugin configurations and directories, read by ansible-inventory', () => {
  test('an executable script (its --list JSON, group vars and group_vars/ next to it)', async () => {
    const file = join(FIXTURES, 'script/inventory.py');
    const want = await toolOracle(file);
    expect(want._meta.hostvars['db-1']).toMatchObject({ tier: 'database', backup: 'nightly' }); // group_vars/db.yml
    compare(file, want);
    expect(ansibleInventory(file, 'app').hosts.map((h) => h.name)).toEqual(['app-1', 'app-2']);
  });

  test('a plugin configuration (ansible.builtin.generator)', async () => {
    const file = join(FIXTURES, 'generator/fleet.yml');
    const want = await toolOracle(file);
    expect(membersOf(want, 'all').size).toBe(4);
    compare(file, want);
  });

  test('a directory: an INI file plus ansible.builtin.constructed (keyed groups, conditional groups, composed vars)', async () => {
    const file = join(FIXTURES, 'constructed');
    const want = await toolOracle(file);
    expect([...membersOf(want, 'canary')]).toEqual(['api-1']);
    compare(file, want);
    const dc1 = ansibleInventory(file, 'dc_dc1');
    expect(dc1.hosts.map((h) => [h.name, h.vars.app_port])).toEqual([
      ['web-1', '8080'],
      ['api-1', '9090'],
    ]);
  });
});

describe('pieces', () => {
  test('host patterns: ranges, strides, letters, padding, ports', () => {
    expect(expandHostPattern('app[01:04]')).toEqual({ hosts: ['app01', 'app02', 'app03', 'app04'], port: undefined });
    expect(expandHostPattern('db-[a:c]:2222')).toEqual({ hosts: ['db-a', 'db-b', 'db-c'], port: 2222 });
    expect(expandHostPattern('n[1:10:3]').hosts).toEqual(['n1', 'n4', 'n7', 'n10']);
    expect(expandHostPattern('[::1]:22')).toEqual({ hosts: ['::1'], port: 22 });
    expect(() => expandHostPattern('a[01:100]')).toThrow(/equal-length/);
  });

  test('INI values are Python literals', () => {
    expect(pythonLiteral('10')).toBe(10);
    expect(pythonLiteral('0755')).toBe('0755');
    expect(pythonLiteral('True')).toBe(true);
    expect(pythonLiteral('yes')).toBe('yes');
    expect(pythonLiteral("['a', 1]")).toEqual(['a', 1]);
    expect(pythonLiteral("{'k': {'n': None}}")).toEqual({ k: { n: null } });
    expect(pythonLiteral('"a" \'b\'')).toBe('ab');
    expect(pythonLiteral('1, 2')).toEqual([1, 2]);
    expect(pythonLiteral('-0x10')).toBe(-16);
    expect(pythonLiteral('1_000')).toBe(1000);
    expect(pythonLiteral('x + 1')).toBe('x + 1');
  });

  test('a jump host in ansible_ssh_common_args', () => {
    expect(jumpFromSshArgs('-o ProxyJump=bastion')).toBe('bastion');
    expect(jumpFromSshArgs('-o StrictHostKeyChecking=no -J ops@b1:2222,b2')).toBe('ops@b1:2222,b2');
    expect(jumpFromSshArgs("-o 'ProxyJump jump@b'")).toBe('jump@b');
    expect(jumpFromSshArgs('-oProxyJump=x')).toBe('x');
    expect(jumpFromSshArgs('-o ProxyCommand="ssh -W %h:%p -q -p 2200 ops@bastion"')).toBe('ops@bastion:2200');
    expect(jumpFromSshArgs('-o ProxyCommand="nc -X 5 -x proxy:1080 %h %p"')).toBeUndefined();
    expect(jumpFromSshArgs('-o ServerAliveInterval=30')).toBeUndefined();
  });
});
