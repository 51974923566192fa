import type { z } from 'zod';
import type { Host, Playbook } from '../playbook/types.js';
import type { Check, Monitor, Provider, ProviderContext } from '../providers/types.js';
import type { ExecResult } from '../transport/types.js';

/** Everything a step needs for one host. Built by the engine; actions never import transports or providers directly. */
export interface StepContext extends ProviderContext {
  playbook: Playbook;
  wave: number;
  /** Step name (unique within the pipeline). */
  step: string;
  /** Render a template for a shell command: substituted values are shell-quoted. `over` replaces some values (undo of a deploy: the version live again). */
  renderShell(template: string, over?: { version?: string }): string;
  /** Run a shell command on this host through the playbook's transport, output streamed to the host log. */
  sh(command: string, opts?: { timeoutMs?: number; input?: string }): Promise<ExecResult>;
  /** A named provider instance of role `drain` (throws a clear error when the name is unknown or of another role). */
  provider(name: string): Provider;
  /** A named provider instance of role `monitor`. */
  monitor(name: string): Monitor;
  /** The saved data of this host's most recent completed step with this action+provider (e.g. restore finds drain's data). */
  savedOf(action: string, provider?: string): unknown;
  /** Report a live value while polling ("12 rps, waiting for 0"). */
  progress(observed: string): void;
  /** When the step times out: epoch milliseconds (Date.now() scale). */
  deadline: number;
  /** Journal progress inside a long step (`did` with data); a resumed attempt gets it as `previous`. */
  save?(data: unknown): Promise<void>;
  /** Run the playbook's `watch:` checks once for this host (between warm-up steps). */
  watch?(): Promise<{ ok: boolean; observed: string }>;
}

/**
 * One kind of step (a playbook key such as `run`, `drain`, `deploy`): one file in src/actions/ plus one line in src/actions/index.ts.
 * The engine runs: do → (poll check until done or timeout) → done. Rollback runs undo(saved) in reverse order.
 */
export interface Action<P = any> {
  /** The playbook key: `- drain: dubbo` selects the action with key `drain`. */
  key: string;
  /** Validates the value under the key (or, with stepLevel, the whole step object minus name/timeout/retries/interval). */
  params: z.ZodType<P, z.ZodTypeDef, any>;
  /** The action's options sit beside its key (`run:` with `undo:`), not under it. */
  stepLevel?: boolean;
  /** Default step name when the playbook gives none, e.g. `drain:dubbo`. */
  defaultName(p: P): string;
  /** Provider names this step uses, with the role each must have (checked at validation time). */
  uses?(p: P): { provider: string; role: 'drain' | 'monitor' }[];
  /** For the reference (graywave explain, docs/reference.md). */
  doc?: import('../reference/doc.js').TypeDoc;
  /** One line for the dry-run plan; may render templates for the host. */
  describe(p: P, ctx: { host: Host; renderShell(t: string): string; render(t: string): string }): string;
  /** The dry run's undo command, where the step has one of its own (a `run` step's `undo:`). */
  describeUndo?(p: P, ctx: { host: Host; renderShell(t: string): string; render(t: string): string }): string | undefined;
  /** Move towards the end state. Must be safe to repeat. Returns what undo needs (JSON, no secrets). */
  do(ctx: StepContext, p: P): Promise<unknown>;
  /** Optional read-only probe, polled after do until done (drain → isDrained, waitDrained → traffic 0). */
  check?(ctx: StepContext, p: P): Promise<Check>;
  /** Best-effort inverse of do. Absent: rollback reports the step as skipped. */
  undo?(ctx: StepContext, p: P, saved: unknown): Promise<void>;
  /**
   * True when undo is also right after a failed do (which may have applied in part): rollback then calls
   * undo(saved or undefined). A `run` step's undo command and deploy's switch-back are; a provider drain that
   * failed before recording anything is not.
   */
  undoAfterFailure?: boolean;
  /** Whether the step has an undo for these params (run steps only with `undo:`). Defaults to !!undo. */
  hasUndo?(p: P): boolean;
}
