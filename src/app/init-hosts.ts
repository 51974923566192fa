import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, EXIT, GraywaveError, type ConfigIssue } from '../errors.js';
import { ansibleHosts, type AnsibleHost } from '../playbook/ansible.js';
import { listRegistryHosts, type ListedHost } from '../playbook/registry-hosts.js';
import { Source } from '../playbook/source.js';

/**
 * Hosts for `graywave init`: from an Ansible inventory (`--inventory FILE[:group]`, read by the same reader as
 * `inventory: {ansible: FILE, group}`, src/playbook/ansible.ts) or from a registry (`--from-registry URL --service
 * NAME`, listed by the same provider code as `inventory: {provider, service}`). init writes them into `hosts:`.
 */
export type InitHost = AnsibleHost | ListedHost;

/** `hosts.ini:app` → {file: hosts.ini, group: app}; a file whose own name has a colon is taken whole when it exists. */
export function splitInventoryArg(arg: string, cwd: string): { file: string; group?: string } {
  const i = arg.lastIndexOf(':');
  if (i <= 0 || existsSync(resolve(cwd, arg))) return { file: arg };
  return { file: arg.slice(0, i), group: arg.slice(i + 1) || undefined };
}

/** The hosts of an Ansible inventory (a group of it), as `inventory: {ansible, group}` would release them. */
export function hostsFromInventory(arg: string, cwd: string): { hosts: AnsibleHost[]; file: string; group?: string } {
  const { file, group } = splitInventoryArg(arg, cwd);
  // The reader reports problems at the playbook's `inventory` key; here that key is the option itself.
  const src = new Source('--inventory', JSON.stringify({ inventory: { ansible: file, ...(group !== undefined ? { group } : {}) } }));
  const issues: ConfigIssue[] = [];
  const hosts = ansibleHosts(src, { ansible: file, ...(group !== undefined ? { group } : {}) }, cwd, issues);
  const own = src.issues.map((i) => i.message);
  if (own.length)
    throw new GraywaveError(
      `init --inventory ${arg}: ${own.join('; ')}`,
      EXIT.usage,
      'FILE is an Ansible inventory (INI, YAML or `ansible-inventory --list` JSON); FILE:GROUP takes one group',
    );
  if (issues.length || !hosts) throw new ConfigError(issues.length ? issues : [{ file, line: 1, col: 1, message: 'no hosts' }]);
  return { hosts, file, group };
}

/** A provider entry the registry URL names: Dubbo's own registry address syntax (zookeeper://, nacos://) or a Nacos URL. */
export interface RegistryProvider {
  name: string;
  spec: { type: string } & Record<string, unknown>;
}

/**
 * `zookeeper://zk1:2181,zk2:2181[/chroot][?backup=zk3:2181&group=dubbo]` → a dubbo-zookeeper provider (the address
 * a Dubbo application configures as its registry); `nacos://nacos:8848[?namespace=ns&group=G]` or
 * `http(s)://nacos:8848` → a nacos provider (`&username=NAME&passwordEnv=VAR` for a Nacos with auth: the password
 * is read from that environment variable and written as `{ env: VAR }`, never as text). `service` is the Dubbo application (or interface) or the Nacos service.
 */
export function registryProvider(url: string, service: string): RegistryProvider {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]+)([^?#]*)(?:\?([^#]*))?$/i.exec(url.trim());
  const scheme = m?.[1]?.toLowerCase();
  const hint = 'zookeeper://zk1:2181,zk2:2181 (Dubbo on ZooKeeper) or nacos://nacos:8848 / http://nacos:8848 (Nacos)';
  if (!m || !scheme) throw new GraywaveError(`init --from-registry ${url}: not a registry address`, EXIT.usage, `give ${hint}`);
  if (m[2]!.includes('@'))
    throw new GraywaveError(
      `init --from-registry: credentials in the address are not written into a playbook`,
      EXIT.usage,
      'for Nacos give ?username=NAME&passwordEnv=VAR (the password is read from that environment variable, and written as { env: VAR })',
    );
  const params = new URLSearchParams(m[4] ?? '');
  const path = (m[3] ?? '').replace(/\/+$/, '');
  if (scheme === 'zookeeper' || scheme === 'zk') {
    const backup = (params.get('backup') ?? '').split(',').filter(Boolean);
    const connect = [...m[2]!.split(','), ...backup].join(',') + path;
    const root = params.get('group');
    return { name: 'dubbo', spec: { type: 'dubbo-zookeeper', connect, application: service, ...(root ? { root: `/${root}` } : {}) } };
  }
  if (scheme === 'nacos' || scheme === 'http' || scheme === 'https') {
    const base = `${scheme === 'nacos' ? 'http' : scheme}://${m[2]}${path}`;
    const ns = params.get('namespace');
    const group = params.get('group');
    const user = params.get('username');
    const passwordEnv = params.get('passwordEnv');
    if (!user !== !passwordEnv)
      throw new GraywaveError(
        `init --from-registry ${url}: username and passwordEnv go together`,
        EXIT.usage,
        'e.g. nacos://nacos:8848?username=nacos&passwordEnv=NACOS_PASSWORD',
      );
    const auth = user && passwordEnv ? { username: user, password: { env: passwordEnv } } : {};
    return { name: 'nacos', spec: { type: 'nacos', url: base, services: [service], ...(ns ? { namespace: ns } : {}), ...(group ? { group } : {}), ...auth } };
  }
  throw new GraywaveError(
    `init --from-registry ${url}: registry "${scheme}" cannot list hosts here`,
    EXIT.usage,
    `give ${hint}; for etcd write inventory: { provider: NAME, service: NAME } by hand`,
  );
}

/**
 * The instances a registry lists for `service`, one host per address (src/playbook/registry-hosts.ts), and the
 * provider entry for the playbook. For Dubbo given an interface, the application is the one the providers name.
 */
export async function hostsFromRegistry(
  url: string,
  service: string,
  cwd: string,
  timeoutMs = 30_000,
): Promise<{ hosts: ListedHost[]; provider: RegistryProvider }> {
  const provider = registryProvider(url, service);
  let hosts: ListedHost[];
  try {
    hosts = await listRegistryHosts(cwd, provider.spec, service, AbortSignal.timeout(timeoutMs));
  } catch (err) {
    throw new GraywaveError(
      `init --from-registry ${url} --service ${service}: ${(err as Error).message}`,
      EXIT.halted,
      'check the address and the service name; nothing was written',
    );
  }
  if (provider.spec.type === 'dubbo-zookeeper') {
    const apps = new Set(hosts.map((h) => h.labels?.application).filter(Boolean));
    if (apps.size === 1) provider.spec.application = [...apps][0];
  }
  return { hosts, provider };
}
