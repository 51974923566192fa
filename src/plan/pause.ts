import type { PauseSpec, WaveSpec } from '../playbook/types.js';
import { formatMs } from '../util/duration.js';

/** One `pause:` value as validated by the schema: none, approve, or milliseconds. */
export function toPauseSpec(v: 'none' | 'approve' | number | undefined): PauseSpec {
  return v === undefined || v === 'none' ? { kind: 'none' } : v === 'approve' ? { kind: 'approve' } : { kind: 'duration', ms: v };
}

/**
 * `waves.pause` as the playbook wrote it: one value for every gap between waves, or
 * `{ afterCanary: approve, between: 5m }` (after the canary wave / between the other waves).
 */
export function parsePause(v: unknown): { pause: PauseSpec; afterCanary?: PauseSpec } {
  if (v !== null && typeof v === 'object') {
    const o = v as { afterCanary?: 'none' | 'approve' | number; between?: 'none' | 'approve' | number };
    return { pause: toPauseSpec(o.between), ...(o.afterCanary !== undefined ? { afterCanary: toPauseSpec(o.afterCanary) } : {}) };
  }
  return { pause: toPauseSpec(v as 'none' | 'approve' | number) };
}

/** What happens after wave `index` (1-based) before the next one starts. */
export function pauseAfter(waves: Pick<WaveSpec, 'canary' | 'pause' | 'afterCanary'>, index: number): PauseSpec {
  return index === 1 && waves.canary && waves.afterCanary ? waves.afterCanary : waves.pause;
}

/** `wait 5m`, `a person approves`, `none`. */
export function pauseText(p: PauseSpec): string {
  return p.kind === 'duration' ? `wait ${humanMs(p.ms)}` : p.kind === 'approve' ? 'a person approves (terminal prompt, or `graywave approve` from CI)' : 'none';
}

/** 300000 → 5m, 90000 → 1m30s, 1500 → 1.5s. */
export function humanMs(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms < 60_000) return `${ms / 1000}s`;
  return formatMs(ms);
}
