import { createHash } from 'node:crypto';
import { findAction } from '../actions/index.js';
import type { Host, Playbook, StepSpec, WaveSpec } from '../playbook/types.js';
import { render, renderShell, type TemplateValues } from '../util/template.js';
import { hotfixWaves, labelWaves } from './labels.js';

export interface PlannedWave {
  index: number;
  hosts: string[];
}

/** The whole release decided up front: pure data, printed by `plan`, executed by the engine, hashed into the journal. */
export interface Plan {
  release: string;
  version: string;
  group: string;
  planHash: string;
  waves: PlannedWave[];
  steps: string[];
  /** The wave after which the switchover steps run (GREEN share first reaches `at`). */
  switchoverAfterWave?: number;
  /** Set under the hotfix policy: shown by `plan` and recorded in the journal's start record. */
  hotfix?: { reason: string };
}

/**
 * Splits hosts (in playbook order) into waves: an optional canary of exactly N hosts, then chunks of
 * ceil(size × total hosts) — or `size` hosts when it is a count. 12 hosts, canary 1, 25% → 1, 3, 3, 3, 2.
 */
export function waveSizes(total: number, spec: Pick<WaveSpec, 'canary' | 'size'>): number[] {
  const sizes: number[] = [];
  let left = total;
  if (spec.canary && spec.canary > 0 && left > 0) {
    const c = Math.min(spec.canary, left);
    sizes.push(c);
    left -= c;
  }
  const chunk = 'count' in spec.size ? spec.size.count : Math.max(1, Math.ceil(spec.size.percent * total - 1e-9));
  while (left > 0) {
    const n = Math.min(chunk, left);
    sizes.push(n);
    left -= n;
  }
  return sizes;
}

/** The hosts of each wave, in order: label groups (`waves.by`), host-count chunks, or the hotfix shape. */
export function planWaves(pb: Playbook): string[][] {
  let waves: string[][];
  if (pb.waves.by) waves = labelWaves(pb.hosts, pb.waves);
  else {
    waves = [];
    let at = 0;
    for (const n of waveSizes(pb.hosts.length, pb.waves)) {
      waves.push(pb.hosts.slice(at, at + n).map((h) => h.name));
      at += n;
    }
  }
  return pb.hotfix ? hotfixWaves(waves, pb.waves.canary) : waves;
}

export function planHash(pb: Playbook): string {
  const material: Record<string, unknown> = {
    version: pb.version,
    group: pb.group,
    hosts: pb.hosts.map((h) => [h.name, h.address, h.port ?? null]),
    steps: pb.steps.map((s) => [s.name, s.action, s.params]),
    waves: waveSizes(pb.hosts.length, pb.waves),
  };
  // Only when used, so that the hash of a plain playbook stays what it was (journals in flight keep matching).
  if (pb.waves.by || pb.hotfix) material.waveHosts = planWaves(pb);
  if (pb.hotfix) material.hotfix = true;
  if (pb.routing?.length) material.routing = pb.routing.map((r) => [r.name, r.type, r.params]);
  return createHash('sha256').update(JSON.stringify(material)).digest('hex').slice(0, 16);
}

export function buildPlan(pb: Playbook): Plan {
  const waves: PlannedWave[] = planWaves(pb).map((hosts, i) => ({ index: i + 1, hosts }));
  let switchoverAfterWave: number | undefined;
  if (pb.switchover) {
    let done = 0;
    for (const w of waves) {
      done += w.hosts.length;
      if (done / pb.hosts.length >= pb.switchover.atPercent - 1e-9) {
        switchoverAfterWave = w.index;
        break;
      }
    }
  }
  return {
    release: pb.name,
    version: pb.version,
    group: pb.group,
    planHash: planHash(pb),
    waves,
    steps: pb.steps.map((s) => s.name),
    switchoverAfterWave,
    hotfix: pb.hotfix,
  };
}

export function templateValues(pb: Playbook, host?: Host, wave?: number): TemplateValues {
  return { release: pb.name, version: pb.version, group: pb.group, host, wave };
}

/** One line per step for a host, as the dry run prints it (commands rendered, nothing contacted). */
export function describeStep(pb: Playbook, step: StepSpec, host: Host, wave: number): string {
  return describeWith(pb, step, host, wave, 'describe') ?? '';
}

/** The step's own undo command for this host (a `run` step's `undo:`), rendered; undefined when it has none. */
export function describeUndo(pb: Playbook, step: StepSpec, host: Host, wave: number): string | undefined {
  return describeWith(pb, step, host, wave, 'describeUndo');
}

function describeWith(pb: Playbook, step: StepSpec, host: Host, wave: number, which: 'describe' | 'describeUndo'): string | undefined {
  const values = templateValues(pb, host, wave);
  const action = findAction(step.action)!;
  try {
    return action[which]?.(step.params, { host, render: (t) => render(t, values), renderShell: (t) => renderShell(t, values) });
  } catch (err) {
    return `(cannot render: ${(err as Error).message})`;
  }
}
