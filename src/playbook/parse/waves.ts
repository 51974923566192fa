import type { Host, WaveSpec } from '../types.js';
import { parsePause } from '../../plan/pause.js';
import type { ParseContext } from './context.js';

type RawWaves = NonNullable<ParseContext['top']>['waves'];

const DEFAULT_WAVES: WaveSpec = { size: { percent: 0.25 }, concurrency: 4, maxFailures: 0, pause: { kind: 'none' } };

/** `25%` or a host count, as a wave size; a percentage outside (0, 100] is reported at `key`. */
function size(c: ParseContext, key: 'size' | 'every', v: string | number): WaveSpec['size'] {
  if (typeof v === 'number') return { count: v };
  const pct = parseFloat(v);
  if (pct <= 0 || pct > 100) c.src.add(['waves', key], `waves.${key} must be between 0% (exclusive) and 100%`);
  return { percent: pct / 100 };
}

/**
 * A canary of the whole fleet is one wave only for a 1-host fleet (the usual canary: 1); on a larger fleet a 100%
 * canary leaves nothing to widen to (issue #9 lists it as bad input); more than the fleet cannot be "exactly N".
 */
function checkCanary(c: ParseContext, w: RawWaves, hosts: Host[]): void {
  if (w.canary === undefined || hosts.length === 0) return;
  if (w.canary > hosts.length) c.src.add(['waves', 'canary'], `canary of ${w.canary} host(s) is more than the fleet (${hosts.length} hosts): use fewer`);
  else if (hosts.length > 1 && w.canary === hosts.length)
    c.src.add(['waves', 'canary'], `canary of ${w.canary} host(s) is the whole fleet (100%): it leaves nothing to widen to; use fewer`);
}

/** `mode: rolling`: `inFlight` hosts in flight, checkpoints `every` so many hosts. */
function rolling(c: ParseContext, w: RawWaves, waves: WaveSpec): void {
  if (w.mode !== 'rolling') {
    if (w.inFlight !== undefined || w.every !== undefined)
      c.src.add(['waves', w.inFlight !== undefined ? 'inFlight' : 'every'], 'inFlight and every belong to mode: rolling', { key: true });
    return;
  }
  if (w.by !== undefined) c.src.add(['waves', 'mode'], 'mode: rolling cannot be combined with label waves (by:)');
  if (w.every !== undefined) waves.size = size(c, 'every', w.every);
  waves.concurrency = w.inFlight ?? w.concurrency ?? 4;
  waves.mode = 'rolling';
}

/** Label-based waves (src/plan/labels.ts): every host carries the label, and `order` names only values in use. */
function byLabel(c: ParseContext, w: RawWaves, hosts: Host[], waves: WaveSpec): WaveSpec {
  const { src, d } = c;
  if (w.by === undefined) {
    if (w.order) src.add(['waves', 'order'], 'waves.order needs waves.by (the label it orders)', { key: true });
    if (w.maxPerZone) src.add(['waves', 'maxPerZone'], 'waves.maxPerZone needs waves.by (e.g. by: zone)', { key: true });
    return waves;
  }
  const by = w.by;
  const rawHosts = Array.isArray(d.hosts) ? d.hosts : undefined;
  hosts.forEach((h, i) => {
    if (h.labels[by] !== undefined) return;
    if (rawHosts) src.add(['hosts', i], `host ${h.name} has no label "${by}" (waves.by: ${by}): add labels: { ${by}: ... }`);
    else src.add(['waves', 'by'], `host ${h.name} (from the inventory) has no label "${by}"`);
  });
  const values = new Set(hosts.map((h) => h.labels[by]).filter((v): v is string => v !== undefined));
  const seenOrder = new Set<string>();
  (w.order ?? []).forEach((v, i) => {
    if (seenOrder.has(v)) src.add(['waves', 'order', i], `waves.order lists ${by} "${v}" twice`);
    else if (hosts.length && !values.has(v)) src.add(['waves', 'order', i], `waves.order: no host has ${by} "${v}" (known: ${[...values].join(', ')})`);
    seenOrder.add(v);
  });
  if (w.order) {
    const unlisted = [...values].filter((v) => !seenOrder.has(v));
    if (unlisted.length) src.add(['waves', 'order'], `waves.order does not list ${by} ${unlisted.join(', ')}: every ${by} of the fleet needs its place`);
  }
  const sizeGiven = !!(d.waves && typeof d.waves === 'object' && 'size' in (d.waves as object));
  return { ...waves, by, order: w.order, maxPerZone: w.maxPerZone, sizeGiven };
}

/** The `waves:` section (needs the hosts: canary and label checks). */
export function parseWaves(c: ParseContext, hosts: Host[]): WaveSpec {
  if (!c.top) return DEFAULT_WAVES;
  const w = c.top.waves;
  const waveSize = size(c, 'size', w.size);
  checkCanary(c, w, hosts);
  const { pause, afterCanary } = parsePause(w.pause);
  if (afterCanary && !w.canary) c.src.add(['waves', 'pause', 'afterCanary'], 'waves.pause.afterCanary needs a canary wave (waves.canary: 1)', { key: true });
  const waves: WaveSpec = {
    canary: w.canary || undefined,
    size: waveSize,
    concurrency: w.concurrency ?? 4,
    maxFailures: w.maxFailures,
    pause,
    ...(afterCanary ? { afterCanary } : {}),
  };
  rolling(c, w, waves);
  return byLabel(c, w, hosts, waves);
}
