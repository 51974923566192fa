import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

/**
 * Ansible as the oracle for inventories: what `ansible-inventory -i FILE --list` prints, and the hosts of a group
 * (children included) in it. Used by the inventory reader's tests and by `graywave init --inventory`'s.
 */
export const ANSIBLE_INVENTORY = '/usr/bin/ansible-inventory';
export const ANSIBLE_FIXTURES = resolve(import.meta.dirname, '../../fixtures/ansible');
export const ANSIBLE_CORPUS = [
  'ini-basic/hosts.ini',
  'ini-dirs/hosts',
  'yaml-basic/inventory.yml',
  'yaml-priority/hosts.yaml',
  'ranges/hosts.ini',
  'yaml-values/hosts.yml',
];

export interface ListJson {
  _meta: { hostvars: Record<string, Record<string, unknown>> };
  [group: string]: { hosts?: string[]; children?: string[] } | ListJson['_meta'];
}

const run = promisify(execFile);

/** `ansible-inventory -i FILE --list`, run in `work`/cwd with that as HOME: no ansible.cfg, nothing written elsewhere. */
export async function ansibleList(file: string, work: string): Promise<ListJson> {
  const cwd = join(work, 'cwd');
  mkdirSync(cwd, { recursive: true });
  const { stdout } = await run(ANSIBLE_INVENTORY, ['-i', file, '--list'], {
    cwd,
    env: { ...process.env, HOME: cwd, ANSIBLE_INVENTORY_UNPARSED_FAILED: 'true', ANSIBLE_INVENTORY_ENABLED: 'yaml,ini' },
    maxBuffer: 16 << 20,
  });
  return JSON.parse(stdout) as ListJson;
}

/** Every host of a group, its children's included, from the --list JSON. */
export function membersOf(list: ListJson, group: string, seen = new Set<string>()): Set<string> {
  const g = list[group] as { hosts?: string[]; children?: string[] } | undefined;
  const out = new Set<string>(g?.hosts ?? []);
  for (const c of g?.children ?? []) if (!seen.has(c)) (seen.add(c), membersOf(list, c, seen).forEach((h) => out.add(h)));
  return out;
}
