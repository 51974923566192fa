import { EXIT, GraywaveError } from '../errors.js';
import { nearest } from '../playbook/messages.js';
import type { Host } from '../playbook/types.js';

/**
 * `--limit app-01,app-0*,zone=a`: the hosts a command works on. Each comma-separated entry is a host name, a
 * pattern (`*` any run of characters, `?` one), or `label=value` (a label pattern). A host is chosen when any
 * entry matches it. An entry that matches no host is a usage error (a typo must not silently shrink the release).
 */
export function resolveLimit(hosts: readonly Host[], spec: string): Set<string> {
  const entries = spec
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  if (!entries.length) throw new GraywaveError('--limit needs host names, patterns or label=value entries (comma-separated)', EXIT.usage);
  const chosen = new Set<string>();
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    const matches =
      eq > 0
        ? hosts.filter((h) => {
            const v = h.labels[entry.slice(0, eq)];
            return v !== undefined && glob(entry.slice(eq + 1)).test(v);
          })
        : hosts.filter((h) => glob(entry).test(h.name));
    if (!matches.length) {
      const guess =
        eq > 0
          ? undefined
          : nearest(
              entry,
              hosts.map((h) => h.name),
            );
      throw new GraywaveError(
        `--limit ${entry}: no host of the playbook matches${guess ? ` (did you mean ${guess}?)` : ''}`,
        EXIT.usage,
        eq > 0 ? `labels are set per host: labels: { ${entry.slice(0, eq)}: ... }` : undefined,
      );
    }
    for (const h of matches) chosen.add(h.name);
  }
  return chosen;
}

function glob(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
}
