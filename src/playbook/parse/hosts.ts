import { resolve } from 'node:path';
import { inventorySource } from '../inventory.js';
import { hostsSchema } from '../schema.js';
import type { Path, Source } from '../source.js';
import type { Host } from '../types.js';
import type { ParseContext } from './context.js';
import { addZodIssues } from './issues.js';
import { readSource } from './read.js';

/** `inventory: {command}` / `{provider, service}`: hosts that only running something can tell. */
export function isRunInventory(data: Record<string, unknown>): boolean {
  return data.inventory !== undefined && data.inventory !== null && typeof data.inventory === 'object' && !Array.isArray(data.inventory);
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
  if (!inv || unreadable()) return undefined;
  const data = inv.data();
  if (unreadable()) return undefined;
  if (data && typeof data === 'object' && !Array.isArray(data) && 'hosts' in data) return { src: inv, raw: (data as { hosts: unknown }).hosts, base: ['hosts'] };
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
  if (!runInventory && isRunInventory(d)) return [];
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
