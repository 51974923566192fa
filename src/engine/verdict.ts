import type { JudgeEvidence, Verdict as JudgeVerdict } from '../gates/evidence.js';

/**
 * What one run of a gate measured. `error`: nothing could be measured (monitor down, no data, the check itself
 * timed out or threw): that says nothing about the release, so it is not a failure.
 */
export interface Measurement {
  /** `ask`: a judging gate's marginal or inconclusive verdict — a person decides (the release pauses for approval). */
  status: 'pass' | 'fail' | 'error' | 'ask';
  observed: string;
  values?: Record<string, number | string>;
  /** A judge's verdict and evidence (src/gates/judge.ts), passed on to the journal and the events. */
  judged?: Judged;
}

export interface Judged {
  verdict?: JudgeVerdict;
  evidence?: JudgeEvidence;
}

/**
 * The verdict on a gate's measurements so far (newest last):
 * - pass / fail: the newest measurement passed / failed;
 * - ask: the newest is a judge's marginal or inconclusive verdict (a person decides);
 * - error: the last `errorLimit` measurements all errored (the gate cannot be measured; not a failed gate);
 * - measure-again: fewer consecutive errors than that, or nothing measured yet;
 * - skipped: an operator's promotion passes it (wins over everything but a pass);
 * - interrupted: Ctrl-C cut it short (the check did not fail; it runs again on resume).
 */
export type Verdict =
  | { status: 'pass' | 'fail' | 'error' | 'ask' | 'skipped' | 'interrupted'; observed: string; values?: Record<string, number | string>; judged?: Judged }
  | { status: 'measure-again'; errors: number };

export interface VerdictInput {
  /** Consecutive errors that make the verdict `error` (at least 1). */
  errorLimit: number;
  /** The operator's promotion in force (`promoted by ana@ci: reason`), if any. */
  promotion?: string;
  /** The release was interrupted (Ctrl-C) while measuring. */
  interrupted?: boolean;
}

/** Pure: the same measurements and input always give the same verdict (table-tested in test/engine/verdict.test.ts). */
export function gateVerdict(measurements: readonly Measurement[], input: VerdictInput): Verdict {
  const last = measurements[measurements.length - 1];
  if (last?.status === 'pass') return { status: 'pass', observed: last.observed, values: last.values, ...(last.judged ? { judged: last.judged } : {}) };
  if (input.promotion !== undefined) return { status: 'skipped', observed: `skipped: ${input.promotion}` };
  if (!last) return { status: 'measure-again', errors: 0 };
  if (input.interrupted) return { status: 'interrupted', observed: last.observed };
  if (last.status === 'fail' || last.status === 'ask')
    return { status: last.status, observed: last.observed, values: last.values, ...(last.judged ? { judged: last.judged } : {}) };
  let errors = 0;
  for (let i = measurements.length - 1; i >= 0 && measurements[i]!.status === 'error'; i--) errors++;
  if (errors >= Math.max(1, input.errorLimit)) {
    return { status: 'error', observed: errors > 1 ? `${last.observed} (${errors} consecutive errors)` : last.observed, values: last.values };
  }
  return { status: 'measure-again', errors };
}

/** Consecutive errors a gate may have before it is `error` (a playbook gate's `errorLimit` overrides it). */
export const DEFAULT_ERROR_LIMIT = 3;
