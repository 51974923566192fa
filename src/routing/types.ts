import type { Host, Playbook } from '../playbook/types.js';
import type { ProviderEnv } from '../providers/types.js';

export type { RoutingEnd, RoutingSpec } from '../playbook/types.js';

export type RoutingPhase = 'publish' | 'widen' | 'final';

/** A point of the release at which a rule is (re)applied. */
export interface RoutingPoint {
  phase: RoutingPhase;
  /** 0 before wave 1; the wave just verified when widening; the last wave at the end. */
  wave: number;
  /** Hosts that run the new version (waves ≤ `wave`), in plan order. */
  greenHosts: Host[];
  /** Share of the fleet in `greenHosts`, 0..1. */
  greenShare: number;
  /** True at the end with `end: final`: the rule's final state (last weight, …). */
  final: boolean;
}

export interface RoutingContext {
  playbook: Playbook;
  env: ProviderEnv;
  signal: AbortSignal;
  log(line: string): void;
}

/** What one change did: `data` is all its undo needs (JSON, no secrets). */
export interface RoutingChange {
  summary: string;
  data: unknown;
}

/** One rule type's behaviour. Every method is idempotent (resume and rollback may repeat it). */
export interface RoutingRule {
  /** Bring the rule to its state at `point`. Returns undefined when it already was in that state (nothing recorded). */
  /** `prior`: the data of this rule's newest change still in effect (a rule that rewrites its own lines needs it). */
  apply(point: RoutingPoint, ctx: RoutingContext, prior?: unknown): Promise<RoutingChange | undefined>;
  /** Read the rule back (and for nginx, send requests) and throw when it is not in its state at `point`. */
  verify(point: RoutingPoint, ctx: RoutingContext): Promise<string>;
  /** Put back what one change replaced, leaving everything else (others' rules, later edits by others) alone. */
  undo(data: unknown, ctx: RoutingContext): Promise<void>;
  close?(): Promise<void>;
}

/** % of non-pinned traffic GREEN gets at `point`: from `weights` (after wave k: weights[k-1], last value holds) or the host share. */
export function weightAt(point: RoutingPoint, weights: number[] | undefined): number {
  if (!weights?.length) return point.final ? 100 : Math.round(point.greenShare * 100);
  if (point.final) return weights[weights.length - 1]!;
  if (point.wave <= 0) return 0;
  return weights[Math.min(point.wave, weights.length) - 1]!;
}
