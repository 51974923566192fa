/**
 * `graywave init` with hosts from an Ansible inventory (ansible-inventory --list is the oracle: the same hosts, the
 * same addresses, ports, users and variables) and from a Nacos registry (the sandbox registry, a local server
 * answering the documented Nacos shapes; Dubbo on a real ZooKeeper is in test/integration/inventory-dubbo.test.ts).
 * The written playbook validates and plans.
 */
import { cpSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostsFromInventory, registryProvider } from '../../src/app/init-hosts.js';
import { starterPlaybook } from '../../src/cli/reference.js';
import { startRegistry, type Registry } from '../../src/sandbox/registry.js';
import { requireBinary } from '../integration/helpers/process.js';
import { cli, requireBuiltCli, tempDirs } from '../helpers/cli.js';
import { ANSIBLE_CORPUS, ANSIBLE_FIXTURES, ANSIBLE_INVENTORY, ansibleList, membersOf } from '../helpers/ansible-oracle.js';

requireBuiltCli();
const hasAnsible = requireBinary(ANSIBLE_INVENTORY, 'apt-get install -y ansible-core'); // CI=true: missing is a failure
const FIXTURES = ANSIBLE_FIXTURES;
const temp = tempDirs('gw-init-');
const oracle = (file: string) => ansibleList(file, temp());

interface WrittenHost {
  name: string;
  address: string;
  port?: number;
  ssh?: { user?: string; identityFile?: string; jumpHost?: string };
  vars?: Record<string, unknown>;
  labels?: Record<string, string>;
}

const CONNECTION = [
  'ansible_host',
  'ansible_ssh_host',
  'ansible_port',
  'ansible_ssh_port',
  'ansible_user',
  'ansible_ssh_user',
  'ansible_ssh_private_key_file',
  'ansible_private_key_file',
];

describe.skipIf(!hasAnsible)('init --inventory FILE[:group] (ansible-inventory --list is the oracle)', () => {
  it('writes every host of the inventory / of each group with the address, port, user, key and variables Ansible gives it', async () => {
    let checked = 0;
    for (const rel of ANSIBLE_CORPUS) {
      const file = join(FIXTURES, rel);
      const want = await oracle(file);
      const groups = [undefined, ...Object.keys(want).filter((g) => g !== '_meta' && g !== 'all' && membersOf(want, g).size > 0)];
      for (const group of groups) {
        const arg = group ? `${file}:${group}` : file;
        const inv = hostsFromInventory(arg, process.cwd());
        const doc = parse(starterPlaybook(['prometheus'], 'inv', { hosts: inv.hosts, from: arg, instead: '' })) as {
          hosts: WrittenHost[];
          inventory?: unknown;
        };
        const members = membersOf(want, group ?? 'all');
        expect({ rel, group, hosts: doc.hosts.map((h) => h.name).sort() }).toEqual({ rel, group, hosts: [...members].sort() });
        for (const h of doc.hosts) {
          const v = want._meta.hostvars[h.name] ?? {};
          const local = v.ansible_connection === 'local' && v.ansible_host === undefined;
          expect({ rel, host: h.name, address: h.address }).toEqual({
            rel,
            host: h.name,
            address: local ? 'local' : String(v.ansible_host ?? v.ansible_ssh_host ?? h.name),
          });
          const port = v.ansible_port ?? v.ansible_ssh_port;
          expect({ rel, host: h.name, port: h.port }).toEqual({ rel, host: h.name, port: port === undefined ? undefined : Number(port) });
          expect({ rel, host: h.name, user: h.ssh?.user }).toEqual({ rel, host: h.name, user: v.ansible_user ?? v.ansible_ssh_user });
          expect({ rel, host: h.name, key: h.ssh?.identityFile }).toEqual({
            rel,
            host: h.name,
            key: v.ansible_ssh_private_key_file ?? v.ansible_private_key_file,
          });
          // Every other variable, as Ansible merged it (passwords, vaulted values and Jinja2 text are left out).
          const vars = Object.fromEntries(
            Object.entries(v).filter(
              ([k, x]) =>
                !CONNECTION.includes(k) &&
                !/pass(word)?$/.test(k) &&
                !JSON.stringify(x).includes('{{') &&
                !JSON.stringify(x).includes('ANSIBLE_VAULT') &&
                !(typeof x === 'object' && x !== null && '__ansible_vault' in x),
            ),
          );
          expect({ rel, host: h.name, vars: h.vars ?? {} }).toEqual({ rel, host: h.name, vars });
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(40);
  }, 120_000);

  it('through the CLI: the playbook names where the hosts came from, validates and plans; a wrong group or file is exit 2 and writes nothing', async () => {
    const dir = temp();
    const inv = join(FIXTURES, 'ini-basic/hosts.ini');
    const r = await cli(['init', '--inventory', `${inv}:db`, '--stack', 'dubbo,prometheus', '--name', 'db-release'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`wrote playbook.yaml with 4 host(s) from the Ansible inventory ${inv} (group db)`);
    const text = readFileSync(join(dir, 'playbook.yaml'), 'utf8');
    expect(text).toContain(`# To read them again at every run instead: inventory: { ansible: "${inv}", group: db }`);
    expect(text).toContain('  - { name: db-a, address: db-a, ssh: { user: postgres, identityFile: ~/.ssh/db_key, jumpHost: bastion.example.com }');
    expect(text).toContain('transport: { type: ssh }');
    const plan = await cli(['plan', 'playbook.yaml', '--json'], { cwd: dir });
    expect(plan.code, plan.stderr).toBe(0);
    expect(Object.keys(JSON.parse(plan.stdout).hosts).sort()).toEqual([...membersOf(await oracle(inv), 'db')].sort());
    expect((await cli(['validate', 'playbook.yaml'], { cwd: dir })).code).toBe(0);

    const bad = temp();
    const group = await cli(['init', '--inventory', `${inv}:dbs`], { cwd: bad });
    expect(group.code).toBe(2);
    expect(group.stderr).toContain(`graywave: init --inventory ${inv}:dbs: group dbs is not in the Ansible inventory ${inv} (its groups: app, db, dc1)`);
    const missing = await cli(['init', '--inventory', 'nope.ini'], { cwd: bad });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('graywave: init --inventory nope.ini: Ansible inventory nope.ini cannot be read');
    expect(existsSync(join(bad, 'playbook.yaml'))).toBe(false);
  }, 60_000);

  it('an inventory path relative to the current directory is written relative to the playbook', async () => {
    const dir = temp();
    mkdirSync(join(dir, 'inv'));
    mkdirSync(join(dir, 'deploy'));
    cpSync(join(FIXTURES, 'ranges/hosts.ini'), join(dir, 'inv/hosts.ini'));
    const r = await cli(['init', '--inventory', 'inv/hosts.ini', '--out', 'deploy/pb.yaml'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'deploy/pb.yaml'), 'utf8')).toContain(
      '# To read them again at every run instead: inventory: { ansible: "../inv/hosts.ini" }',
    );
    expect((await cli(['validate', 'deploy/pb.yaml'], { cwd: dir })).code).toBe(0);
  }, 60_000);
});

describe('init --from-registry (Nacos: the sandbox registry, documented Nacos shapes)', () => {
  let srv: Awaited<ReturnType<typeof startRegistry>>;
  let reg: Registry;
  beforeAll(async () => {
    srv = await startRegistry({});
    reg = srv.registry;
    for (const [ip, port, zone] of [
      ['10.0.0.5', 8080, 'a'],
      ['10.0.0.6', 8080, 'b'],
      ['10.0.0.6', 8081, 'b'],
      ['10.0.0.7', 8080, 'a'],
    ] as const) {
      reg.add({ service: 'DEFAULT_GROUP@@order-service', ip, port, metadata: { zone, version: '1.0.0' } });
    }
  });
  afterAll(() => srv?.close());

  it('nacos://HOST:PORT (and http://) --service NAME: one host per instance IP, the nacos provider pointing at it; validates and plans', async () => {
    const dir = temp();
    const url = srv.url.replace(/^http:/, 'nacos:');
    const r = await cli(['init', '--from-registry', url, '--service', 'order-service', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ file: 'playbook.yaml', hosts: 3 });
    const pb = parse(readFileSync(join(dir, 'playbook.yaml'), 'utf8')) as {
      name: string;
      hosts: WrittenHost[];
      providers: Record<string, Record<string, unknown>>;
      steps: Record<string, unknown>[];
    };
    expect(pb.name).toBe('order-service');
    expect(pb.hosts.map((h) => h.address)).toEqual(['10.0.0.5', '10.0.0.6', '10.0.0.7']);
    expect(pb.hosts[1]).toMatchObject({ labels: { zone: 'b' } });
    expect(pb.providers.nacos).toEqual({ type: 'nacos', url: srv.url, services: ['order-service'] });
    expect(pb.steps[0]).toEqual({ drain: 'nacos' });
    expect(readFileSync(join(dir, 'playbook.yaml'), 'utf8')).toContain(
      '# To read them again at every run instead: inventory: { provider: nacos, service: "order-service" }',
    );
    expect((await cli(['plan', 'playbook.yaml'], { cwd: dir })).code).toBe(0);
    const http = await cli(['init', '--from-registry', srv.url, '--service', 'order-service', '--out', '-'], { cwd: dir });
    expect(http.code, http.stderr).toBe(0);
    expect(http.stdout).toContain('- { name: 10.0.0.7, address: 10.0.0.7');
  }, 60_000);

  it('a Nacos with auth: the password from the environment variable named in the address, written as { env: VAR }, never as text', async () => {
    const secured = await startRegistry({ auth: { username: 'nacos', password: 's3cret-pw' } });
    try {
      secured.registry.add({ service: 'DEFAULT_GROUP@@pay', ip: '10.0.0.9', port: 8080 });
      const dir = temp();
      const url = `${secured.url}?username=nacos&passwordEnv=NACOS_PW`;
      const r = await cli(['init', '--from-registry', url, '--service', 'pay', '--out', '-'], { cwd: dir, env: { NACOS_PW: 's3cret-pw' } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).not.toContain('s3cret-pw');
      expect((parse(r.stdout) as { providers: { nacos: unknown } }).providers.nacos).toEqual({
        type: 'nacos',
        url: secured.url,
        services: ['pay'],
        username: 'nacos',
        password: { env: 'NACOS_PW' },
      });
      expect(r.stdout).toContain('- { name: 10.0.0.9, address: 10.0.0.9');
      const wrong = await cli(['init', '--from-registry', url, '--service', 'pay', '--out', '-'], { cwd: dir, env: { NACOS_PW: 'nope' } });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).not.toContain('nope');
    } finally {
      await secured.close();
    }
  }, 60_000);

  it('a service with no instance, an unknown scheme, a missing --service: clear errors, nothing written', async () => {
    const dir = temp();
    const none = await cli(['init', '--from-registry', srv.url, '--service', 'nobody'], { cwd: dir });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`graywave: init --from-registry ${srv.url} --service nobody: Nacos ${srv.url} lists no instance of service nobody`);
    const scheme = await cli(['init', '--from-registry', 'consul://c:8500', '--service', 'x'], { cwd: dir });
    expect(scheme.code).toBe(2);
    expect(scheme.stderr).toContain('graywave: init --from-registry consul://c:8500: registry "consul" cannot list hosts here');
    const noService = await cli(['init', '--from-registry', srv.url], { cwd: dir });
    expect(noService.code).toBe(2);
    expect(noService.stderr).toContain('graywave: init --from-registry needs --service NAME');
    expect(existsSync(join(dir, 'playbook.yaml'))).toBe(false);
  }, 60_000);

  it('Dubbo registry addresses as Dubbo writes them', () => {
    expect(registryProvider('zookeeper://zk1:2181?backup=zk2:2181,zk3:2181', 'order').spec).toEqual({
      type: 'dubbo-zookeeper',
      connect: 'zk1:2181,zk2:2181,zk3:2181',
      application: 'order',
    });
    expect(registryProvider('zookeeper://zk1:2181,zk2:2181/chroot?group=rpc', 'order').spec).toEqual({
      type: 'dubbo-zookeeper',
      connect: 'zk1:2181,zk2:2181/chroot',
      application: 'order',
      root: '/rpc',
    });
    expect(registryProvider('nacos://n:8848?namespace=dev', 'order').spec).toEqual({
      type: 'nacos',
      url: 'http://n:8848',
      services: ['order'],
      namespace: 'dev',
    });
    expect(registryProvider('nacos://n:8848?username=nacos&passwordEnv=NACOS_PASSWORD', 'order').spec).toEqual({
      type: 'nacos',
      url: 'http://n:8848',
      services: ['order'],
      username: 'nacos',
      password: { env: 'NACOS_PASSWORD' },
    });
    // A password never lands in the playbook.
    expect(() => registryProvider('http://nacos:s3cret@n:8848', 'order')).toThrow(
      'init --from-registry: credentials in the address are not written into a playbook',
    );
    expect(() => registryProvider('nacos://n:8848?username=nacos', 'order')).toThrow('username and passwordEnv go together');
  });
});
