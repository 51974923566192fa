import type { z } from 'zod';
import type { Host, Playbook } from '../playbook/types.js';
import type { Monitor } from '../providers/types.js';
import type { ExecResult } from '../transport/types.js';
import type { JudgeEvidence, Verdict } from './evidence.js';

export interface GateResult {
  ok: boolean;
  /** What was measured ("status 500 on 3/20 requests", "error rate 0.034 > 0.01"). */
  observed: string;
  /** Measured values, recorded in the journal and the report. */
  values?: Record<string, number | string>;
  /**
   * Nothing could be measured (monitor unreachable, no data): the engine counts it as an error of the gate (retried
   * up to the gate's errorLimit), not as a failed gate. `ok` is false with it.
   */
  unknown?: boolean;
  /**
   * A judging gate's verdict. `marginal` and `inconclusive` (with ok false) ask a person: after a wave the engine
   * pauses for approval instead of applying onFailure; as a watch check they do not stop the wave.
   */
  verdict?: Verdict;
  /** The judge's evidence: journalled with the gate record, sent with the verify events, shown by status and report. */
  evidence?: JudgeEvidence;
}

export interface GateContext {
  playbook: Playbook;
  wave: number;
  /** Hosts of the wave just finished. */
  hosts: Host[];
  /** Set when the gate runs once per host. */
  host?: Host;
  /** When the wave's hosts were restored (ms since the epoch; as a watch check: when the wave started). */
  since?: number;
  /** The gate runs as a `watch:` check while the wave's hosts are in flight. */
  watching?: boolean;
  /** The gate runs after the release's last wave (every host is GREEN now). */
  lastWave?: boolean;
  render(template: string): string;
  renderShell(template: string): string;
  /** Run a shell command (per-host gates: on that host through the transport; otherwise locally). */
  sh(command: string, opts?: { timeoutMs?: number }): Promise<ExecResult>;
  monitor(name: string): Monitor;
  signal: AbortSignal;
  log(line: string): void;
  progress(observed: string): void;
  /** Ask a person (terminal prompt). Resolves false when nobody can be asked (then the engine pauses, exit 4). */
  approve?(question: string): Promise<boolean>;
}

/**
 * A verification gate kind (`run`, `http`, `query`, `compare`, `judge`, `approve`): one file in src/gates/ plus one line in src/gates/index.ts.
 */
export interface Gate<P = any> {
  key: string;
  params: z.ZodType<P, z.ZodTypeDef, any>;
  stepLevel?: boolean;
  defaultName(p: P): string;
  uses?(p: P): { provider: string; role: 'monitor' }[];
  describe(p: P): string;
  /** For the reference (graywave explain, docs/reference.md). */
  doc?: import('../reference/doc.js').TypeDoc;
  run(ctx: GateContext, p: P): Promise<GateResult>;
}
