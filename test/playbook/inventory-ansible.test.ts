import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildPlan } from '../../src/plan/build.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { cli, requireBuiltCli } from '../helpers/cli.js';
import { requireBinary } from '../integration/helpers/process.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-ansible-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const f = join(dir, name);
  mkdirSync(join(f, '..'), { recursive: true });
  writeFileSync(f, text);
  return f;
}
const head = 'name: r\nversion: 2.0.0\nsteps:\n  - run: "true"\n';

write(
  'hosts.ini',
  [
    '[app_a]',
    'app[01:02] ansible_user=deploy',
    '[app_b]',
    'app03 ansible_host=10.0.0.3 ansible_port=2203 ansible_ssh_private_key_file=~/.ssh/app_key',
    '[app:children]',
    'app_a',
    'app_b',
    '[app:vars]',
    "ansible_ssh_common_args='-o ProxyJump=ops@bastion:2222'",
    'http_port=8080',
    '[db]',
    'db1',
    '[empty]',
    '[local]',
    'runner ansible_connection=local',
  ].join('\n') + '\n',
);
write('group_vars/app_b.yml', 'http_port: 9090\n');

describe('inventory: { ansible: FILE, group: NAME }', () => {
  it('maps hosts, addresses, ports, per-host ssh settings, vars and group labels', () => {
    const pb = loadPlaybook(write('p.yaml', head + 'inventory: { ansible: ./hosts.ini, group: app }\n'));
    expect(pb.hosts).toEqual([
      {
        name: 'app01',
        address: 'app01',
        vars: { http_port: 8080, ansible_ssh_common_args: '-o ProxyJump=ops@bastion:2222' },
        labels: { app: 'true', app_a: 'true', group: 'app_a' },
        ssh: { user: 'deploy', jumpHost: 'ops@bastion:2222' },
      },
      expect.objectContaining({ name: 'app02', ssh: { user: 'deploy', jumpHost: 'ops@bastion:2222' } }),
      {
        name: 'app03',
        address: '10.0.0.3',
        port: 2203,
        vars: { http_port: 9090, ansible_ssh_common_args: '-o ProxyJump=ops@bastion:2222' },
        labels: { app: 'true', app_b: 'true', group: 'app_b' },
        ssh: { identityFile: '~/.ssh/app_key', jumpHost: 'ops@bastion:2222' },
      },
    ]);
    const all = loadPlaybook(write('all.yaml', head + 'inventory: { ansible: ./hosts.ini }\n'));
    expect(all.hosts.map((h) => `${h.name}@${h.address}:${h.labels.group}`)).toEqual([
      'app01@app01:app_a',
      'app02@app02:app_a',
      'app03@10.0.0.3:app_b',
      'db1@db1:db',
      'runner@local:local',
    ]);
  });

  it('group names drive label waves: waves: { by: group } releases one child group after another', () => {
    const pb = loadPlaybook(write('w.yaml', head + 'inventory: { ansible: ./hosts.ini, group: app }\nwaves: { by: group, order: [app_b, app_a] }\n'));
    expect(buildPlan(pb).waves.map((w) => w.hosts)).toEqual([['app03'], ['app01', 'app02']]);
  });

  it('a missing file, an unknown group or an empty group is a FILE:LINE:COL error at the inventory key, never an empty fleet', () => {
    expect(() => loadPlaybook(write('m.yaml', head + 'inventory: { ansible: ./nope.ini }\n'))).toThrow(
      /m\.yaml:5:23: Ansible inventory \.\/nope\.ini cannot be read: ENOENT/,
    );
    expect(() => loadPlaybook(write('u.yaml', head + 'inventory: { ansible: ./hosts.ini, group: web }\n'))).toThrow(
      /u\.yaml:5:43: group web is not in the Ansible inventory \.\/hosts\.ini \(its groups: app_a, app_b, app, db, empty, local\)/,
    );
    expect(() => loadPlaybook(write('e.yaml', head + 'inventory: { ansible: ./hosts.ini, group: empty }\n'))).toThrow(
      /e\.yaml:5:43: group empty of the Ansible inventory \.\/hosts\.ini has no hosts/,
    );
    expect(() => loadPlaybook(write('k.yaml', head + 'inventory: { ansible: ./hosts.ini, grup: app }\n'))).toThrow(/k\.yaml:5:\d+: inventory: .*grup/);
  });

  it('a problem inside the inventory is reported at its own FILE:LINE:COL', () => {
    write('bad.ini', '[app]\nok1\n  bad/name ansible_host=1.2.3.4\n');
    expect(() => loadPlaybook(write('b.yaml', head + 'inventory: { ansible: ./bad.ini }\n'))).toThrow(
      /bad\.ini:3:3: host bad\/name: host name "bad\/name": host names may only use/,
    );
    write('broken.ini', '[app]\nh1 novalue\n');
    expect(() => loadPlaybook(write('c.yaml', head + 'inventory: { ansible: ./broken.ini }\n'))).toThrow(
      /broken\.ini:2:4: expected key=value host variable assignment, got: novalue/,
    );
    write('loop.ini', '[a:children]\nb\n[b:children]\na\n');
    expect(() => loadPlaybook(write('l.yaml', head + 'inventory: { ansible: ./loop.ini }\n'))).toThrow(/loop\.ini:\d+:\d+: adding group .* creates a loop/);
    write('undef.ini', '[a:children]\nmissing\n[x]\nh\n');
    expect(() => loadPlaybook(write('d.yaml', head + 'inventory: { ansible: ./undef.ini }\n'))).toThrow(
      /undef\.ini:2:1: section \[a:children\] includes undefined group: missing/,
    );
    write('proxy.ini', '[app]\nh1\n[app:vars]\nansible_ssh_common_args=\'-o ProxyCommand="nc -x proxy:1080 %h %p"\'\n');
    expect(() => loadPlaybook(write('pc.yaml', head + 'inventory: { ansible: ./proxy.ini }\n'))).toThrow(
      /proxy\.ini:2:1: host h1: the ProxyCommand in ansible_ssh_common_args is not one graywave can follow/,
    );
    write('bad.yml', 'all:\n  hosts:\n    h1: [not, a, mapping]\n');
    expect(() => loadPlaybook(write('y.yaml', head + 'inventory: { ansible: ./bad.yml }\n'))).toThrow(
      /bad\.yml:3:5: the variables of host h1 must be a mapping/,
    );
  });

  it('validate through the CLI: exit 2 with the position, no stack trace', async () => {
    requireBuiltCli();
    const r = await cli(['validate', write('v.yaml', head + 'inventory: { ansible: ./nope.ini }\n')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/v\.yaml:5:23: Ansible inventory \.\/nope\.ini cannot be read/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('secrets in an inventory', () => {
  it('passwords and vaulted values never become vars', () => {
    write(
      'secret/hosts.yml',
      'app:\n  hosts:\n    s1:\n      ansible_password: hunter2\n      ansible_become_pass: hunter3\n      token: !vault |\n        $ANSIBLE_VAULT;1.1;AES256\n        6162\n      keep: me\n',
    );
    const pb = loadPlaybook(write('sec.yaml', head + 'inventory: { ansible: ./secret/hosts.yml }\n'));
    expect(pb.hosts[0]!.vars).toEqual({ keep: 'me' });
    expect(JSON.stringify(pb)).not.toMatch(/hunter|ANSIBLE_VAULT/);
  });
});

describe('inventory: FILE naming an Ansible inventory', () => {
  it('says how to read it', () => {
    expect(() => loadPlaybook(write('s.yaml', head + 'inventory: ./hosts.ini\n'))).toThrow(
      /s\.yaml:5:12: \.\/hosts\.ini looks like an Ansible inventory: write inventory: \{ ansible: \.\/hosts\.ini, group: NAME \}/,
    );
    write('groups.yml', 'app:\n  hosts:\n    a1:\n');
    expect(() => loadPlaybook(write('g.yaml', head + 'inventory: ./groups.yml\n'))).toThrow(/looks like an Ansible inventory/);
  });
});

describe('inventory: { ansible: SCRIPT or plugin configuration }: read by ansible-inventory', () => {
  const FIX = join(import.meta.dirname, '../../fixtures/ansible');
  const hasAnsible = requireBinary('/usr/bin/ansible-inventory', 'apt-get install -y ansible-core'); // CI=true: missing is a failure

  it.skipIf(!hasAnsible)('a script inventory gives hosts with their ssh settings, vars and group labels', () => {
    const pb = loadPlaybook(write('script.yaml', head + `inventory: { ansible: ${join(FIX, 'script/inventory.py')}, group: prod }\n`));
    expect(pb.hosts).toEqual([
      {
        name: 'app-1',
        address: '10.0.1.11',
        port: 2201,
        vars: { env: 'prod', tier: 'web', weight: 100, zone: 'a' },
        labels: { prod: 'true', app: 'true', group: 'app' },
        ssh: { user: 'deploy' },
      },
      {
        name: 'app-2',
        address: '10.0.1.12',
        vars: { env: 'prod', tier: 'web', weight: 100, zone: 'b', ansible_ssh_common_args: '-o ProxyJump=ops@bastion:2222' },
        labels: { prod: 'true', app: 'true', group: 'app' },
        ssh: { jumpHost: 'ops@bastion:2222' },
      },
      {
        name: 'db-1',
        address: '10.0.2.21',
        vars: { env: 'prod', tier: 'database', backup: 'nightly' },
        labels: { prod: 'true', db: 'true', group: 'db' },
        ssh: { identityFile: '~/.ssh/db_key' },
      },
    ]);
  });

  it.skipIf(!hasAnsible)('a constructed plugin over an inventory directory: its groups select hosts', () => {
    const pb = loadPlaybook(write('constructed.yaml', head + `inventory: { ansible: ${join(FIX, 'constructed')}, group: canary }\n`));
    expect(pb.hosts.map((h) => [h.name, h.address, h.labels.group])).toEqual([['api-1', '10.0.4.1', 'canary']]);
  });

  it.skipIf(!hasAnsible)('a broken playbook never runs the script; a failing script is an error naming it', () => {
    const mark = join(dir, 'script-ran');
    process.env.GW_INVENTORY_MARK = mark;
    try {
      const bad = write('bad-script.yaml', head + `inventory: { ansible: ${join(FIX, 'script/inventory.py')} }\nwaves: { size: nope }\n`);
      expect(() => loadPlaybook(bad)).toThrow(/bad-script\.yaml/);
      expect(existsSync(mark)).toBe(false);
      loadPlaybook(write('ok-script.yaml', head + `inventory: { ansible: ${join(FIX, 'script/inventory.py')} }\n`));
      expect(existsSync(mark)).toBe(true);
    } finally {
      delete process.env.GW_INVENTORY_MARK;
    }
    const failing = write('inv/failing.sh', '#!/bin/sh\necho "cannot reach the CMDB" >&2\nexit 3\n');
    chmodSync(failing, 0o755);
    expect(() => loadPlaybook(write('failing.yaml', head + 'inventory: { ansible: ./inv/failing.sh }\n'))).toThrow(
      /failing\.yaml:5:\d+: .*failing\.sh is an executable inventory script; `ansible-inventory --list -i .*failing\.sh` failed \(exit \d+\).*cannot reach the CMDB/,
    );
  });

  it('without ansible-inventory installed: an error naming the file and how to get it, never an empty fleet', () => {
    const saved = process.env.PATH;
    process.env.PATH = join(dir, 'no-such-bin');
    try {
      expect(() => loadPlaybook(write('noansible.yaml', head + `inventory: { ansible: ${join(FIX, 'generator/fleet.yml')} }\n`))).toThrow(
        /noansible\.yaml:5:\d+: .*fleet\.yml is an inventory plugin configuration \(plugin: ansible\.builtin\.generator\), which only Ansible can read, and ansible-inventory is not installed/,
      );
    } finally {
      process.env.PATH = saved;
    }
  });
});
