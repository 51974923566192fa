import type { Host, WaveSpec } from '../playbook/types.js';

/**
 * Label-based waves (`waves: { by: set, order: [set10, set9] }`): hosts are grouped by the value of one label, and
 * the groups are released one after another in `order` (least important first; default: the order in which the
 * values first appear in the host list). A group is one wave unless it is split further:
 *   - `maxPerZone: N`  at most N hosts of the group per wave;
 *   - `size` (when written in the playbook) as in host-count waves, but relative to the group
 *     (25% of a 8-host set → waves of 2; a count → waves of that many).
 * Both given: the smaller chunk wins. `canary: N` takes the first N hosts of the first group as a wave of its own.
 * A wave never mixes two groups. Within a group, hosts keep their playbook order.
 */
export function labelWaves(hosts: readonly Host[], spec: Pick<WaveSpec, 'by' | 'order' | 'maxPerZone' | 'size' | 'sizeGiven' | 'canary'>): string[][] {
  const by = spec.by!;
  const groups = new Map<string, Host[]>();
  for (const h of hosts) {
    const v = h.labels[by];
    if (v === undefined) throw new Error(`host ${h.name} has no label "${by}"`);
    let g = groups.get(v);
    if (!g) groups.set(v, (g = []));
    g.push(h);
  }
  const order = spec.order ?? [...groups.keys()];
  const missing = [...groups.keys()].filter((v) => !order.includes(v));
  if (missing.length) throw new Error(`waves.order does not list ${by} ${missing.join(', ')}`);
  const waves: string[][] = [];
  let canary = spec.canary ?? 0;
  for (const value of order) {
    let members = (groups.get(value) ?? []).map((h) => h.name);
    if (members.length === 0) continue;
    if (canary > 0) {
      const c = Math.min(canary, members.length);
      waves.push(members.slice(0, c));
      members = members.slice(c);
      canary = 0;
      if (members.length === 0) continue;
    }
    const total = (groups.get(value) ?? []).length;
    let chunk = members.length;
    if (spec.sizeGiven) chunk = Math.min(chunk, 'count' in spec.size ? spec.size.count : Math.max(1, Math.ceil(spec.size.percent * total - 1e-9)));
    if (spec.maxPerZone) chunk = Math.min(chunk, spec.maxPerZone);
    for (let i = 0; i < members.length; i += chunk) waves.push(members.slice(i, i + chunk));
  }
  return waves;
}

/**
 * The hotfix policy's waves: the canary (waves.canary hosts, at least 1) first, then every other host in one wave.
 * Host order is the order of the normal plan (label order included), so a set-based release still starts with the
 * least important set.
 */
export function hotfixWaves(normal: readonly string[][], canary: number | undefined): string[][] {
  const all = normal.flat();
  const c = Math.min(Math.max(1, canary ?? 1), all.length);
  const waves = [all.slice(0, c)];
  if (all.length > c) waves.push(all.slice(c));
  return waves;
}
