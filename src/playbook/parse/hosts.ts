import { resolve } from 'node:path';
import { ansibleHosts, ansibleToolReason } from '../ansible.js';
import { inventorySource } from '../inventory.js';
import { hostsSchema } from '../schema.js';
import type { Path, Source } from '../source.js';
import type { Host } from '../types.js';
import type { ParseContext } from './context.js';
import { addZodIssues } from './issues.js';
import { readSource } from './read.js';

/**
 * `inventory: {command}` / `{provider, service}`, or an Ansible source only ansible-inventory reads (a script, a
 * plugin configuration, a directory): hosts that only running something can tell.
 */
export function isRunInventory(data: Record<string, unknown>, dir: string): boolean {
  const inv = data.inventory;
  if (inv === undefined || inv === null || typeof inv !== 'object' || Array.isArray(inv)) return false;
  if (!('ansible' in inv)) return true;
  const file = (inv as { ansible?: unknown }).ansible;
  return typeof file === 'string' && file !== '' && ansibleToolReason(resolve(dir, file)) !== undefined;
}

/** An `inventory: FILE` that is an Ansible inventory (INI, or a mapping of groups) rather than a host list. */
function looksAnsible(file: string, data: unknown, unreadable: boolean): boolean {
  if (/\.(ini|cfg)$/i.test(file) || (unreadable && !/\.(ya?ml|json)$/i.test(file))) return true;
  return !!data && typeof data === 'object' && !Array.isArray(data) && !('hosts' in data && Array.isArray((data as { hosts: unknown }).hosts));
}

/** Where the host list comes from: the playbook's `hosts:`, or an inventory (file, command, registry). */
function hostList(c: ParseContext): { src: Source; raw: unknown; base: Path } | undefined {
  const { src, d, dir, issues } = c;
  if (d.inventory === undefined) {
    if (d.hosts === undefined) return (src.add([], 'no hosts: add `hosts:` or `inventory: FILE`'), undefined);
    return { src, raw: d.hosts, base: ['hosts'] };
  }
  const inv = typeof d.inventory === 'string' ? readSource(resolve(dir, d.inventory), issues) : inventorySource(src, d.inventory, dir, d.providers, issues);
  // An inventory that cannot be read (bad YAML, an alias bomb) is reported once, by itself.
  const unreadable = () => (inv!.issues.length ? (issues.push(...inv!.issues.splice(0)), true) : false);
  const hintAnsible = (data: unknown, bad: boolean) => {
    if (typeof d.inventory === 'string' && looksAnsible(d.inventory, data, bad))
      src.add(['inventory'], `${d.inventory} looks like an Ansible inventory: write inventory: { ansible: ${d.inventory}, group: NAME }`);
  };
  if (!inv) return undefined;
  if (inv.issues.length) return (hintAnsible(undefined, true), unreadable(), undefined);
  const data = inv.data();
  if (unreadable()) return undefined;
  hintAnsible(data, false);
  if (typeof d.inventory === 'string' && data !== null && data !== undefined && typeof data !== 'object') {
    inv.add(
      [],
      `not a host list: an inventory file is a YAML list of hosts ({ name, address } each) or a mapping with hosts:, and this file reads as ${typeof data === 'string' ? 'plain text' : `a single ${typeof data}`}`,
    );
    return (unreadable(), undefined);
  }
  if (data && typeof data === 'object' && !Array.isArray(data) && 'hosts' in data)
    return { src: inv, raw: (data as { hosts: unknown }).hosts, base: ['hosts'] };
  return { src: inv, raw: data, base: [] };
}

/** Duplicate names are looked for in the raw list, so that they are reported along with any other problem of it. */
function duplicateNames(hostsSrc: Source, raw: unknown, base: Path): void {
  const seen = new Map<string, number>();
  (Array.isArray(raw) ? raw : []).forEach((h: unknown, i) => {
    const name = h && typeof h === 'object' ? (h as { name?: unknown }).name : undefined;
    if (typeof name !== 'string') return;
    if (seen.has(name)) hostsSrc.add([...base, i, 'name'], `duplicate host name "${name}" (first at hosts[${seen.get(name)}])`);
    else seen.set(name, i);
  });
}

/** The `hosts:` / `inventory:` section. With `runInventory` false, an inventory command or registry is not run. */
export function parseHosts(c: ParseContext, runInventory: boolean): Host[] | undefined {
  const { src, d, issues } = c;
  if (d.hosts !== undefined && d.inventory !== undefined) {
    src.add(['inventory'], 'give either hosts or inventory, not both', { key: true });
    return undefined;
  }
  // First pass over a playbook whose hosts come from a command or a registry: check the rest without them.
  if (!runInventory && isRunInventory(d, c.dir)) return [];
  // An Ansible inventory (src/playbook/ansible.ts): a file read here, or a script/plugin read by ansible-inventory.
  if (d.inventory !== null && typeof d.inventory === 'object' && 'ansible' in d.inventory) return ansibleHosts(src, d.inventory, c.dir, issues);
  const list = hostList(c);
  if (!list) return undefined;
  const { src: hostsSrc, raw, base } = list;
  duplicateNames(hostsSrc, raw, base);
  const r = hostsSchema.safeParse(raw);
  if (!r.success) addZodIssues(hostsSrc, base, r.error);
  else if (r.data.length === 0) hostsSrc.add(base, 'the host list is empty: a release needs at least one host');
  if (hostsSrc !== src) issues.push(...hostsSrc.issues.splice(0));
  return r.success ? (r.data as Host[]) : undefined;
}
