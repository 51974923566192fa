/** A host of the fleet, as the playbook (or inventory file) names it. Plain data. */
export interface Host {
  name: string;
  address: string;
  /** Other names or IPs a registry may list the host by (a Dubbo provider registered by host name …). */
  aliases?: string[];
  /** Per-host transport port (ssh), overrides transport.port. */
  port?: number;
  /** Per-host ssh settings (user, port, identity, jump host); the playbook's transport is the default. */
  ssh?: { user?: string; port?: number; identityFile?: string; jumpHost?: string };
  /** Free-form values, reachable as {{host.vars.X}}. */
  vars: Record<string, unknown>;
  /** Labels used by label-based wave strategies ({{host.labels.X}}). */
  labels: Record<string, string>;
}

/** One entry of `steps:` after validation. `action` is the playbook key that chose the action (run, drain, …). */
export interface StepSpec {
  /** Unique within the pipeline; defaults to a name derived from the action (e.g. `drain:dubbo`). */
  name: string;
  action: string;
  /** The value under the action key, already checked by the action's schema. */
  params: unknown;
  timeoutMs: number;
  retries: number;
  /** Delay between polls of the action's check. */
  intervalMs?: number;
  /** `tags:` of the step (`deploy`: skipped by a train app with `deploy: false`). */
  tags?: string[];
}

/** One entry of `verify:` (gates) after validation. */
export interface GateSpec {
  name: string;
  gate: string;
  params: unknown;
  /** True when the gate's strings use {{host.*}}: it then runs once per host of the wave. */
  perHost: boolean;
  timeoutMs: number;
  /** For `watch:` checks: how often the check runs while a wave is in flight. */
  intervalMs?: number;
  /** Skipped under the hotfix policy (`policy: hotfix` or `run --hotfix`). */
  skipOnHotfix?: boolean;
  /** Consecutive measurement errors (monitor down, no data) before the gate is an error (default 3; src/engine/verdict.ts). */
  errorLimit?: number;
}

export type PauseSpec = { kind: 'none' } | { kind: 'duration'; ms: number } | { kind: 'approve' };

export interface WaveSpec {
  canary?: number;
  /** Either a fraction of the fleet (0 < f <= 1) or an absolute host count. */
  size: { percent: number } | { count: number };
  concurrency: number;
  maxFailures: number;
  pause: PauseSpec;
  /** `pause: { afterCanary: … }`: what follows the canary wave instead of `pause` (which then applies between the others). */
  afterCanary?: PauseSpec;
  /** Label-based waves: hosts grouped by this label (set, zone, …), one group after another. */
  by?: string;
  /** Order of the label values (least important first); default: first appearance in the host list. */
  order?: string[];
  /** With `by`: at most this many hosts of one group per wave. */
  maxPerZone?: number;
  /** `size` was written in the playbook (with `by`, groups are split by it only then). */
  sizeGiven?: boolean;
  /**
   * `rolling`: `concurrency` (from `inFlight`) hosts stay in flight across wave boundaries; the waves (from
   * `every`) become checkpoints where gates run and maxFailures is counted.
   */
  mode?: 'waves' | 'rolling';
}

export interface TransportSpec {
  type: string;
  [option: string]: unknown;
}

export interface ProviderSpec {
  type: string;
  options: Record<string, unknown>;
}

/** What happens to a routing rule when the release completes. */
export type RoutingEnd = 'final' | 'keep' | 'remove';

/**
 * One entry of `routing:` after validation. Playbook data, so it lives here (src/routing/types.ts re-exports it):
 * the playbook types import nothing of routing, providers or transport.
 */
export interface RoutingSpec {
  name: string;
  type: string;
  /** The entry's options, already checked by the type's schema (without name/type/end). */
  params: unknown;
  end: RoutingEnd;
}

/** What a failed gate does. `freeze`: halt and keep everything exactly as it is (irreversible data changes). */
export type OnFailure = 'halt' | 'rollback-wave' | 'rollback-all' | 'freeze';

export interface Playbook {
  /** Absolute path of the playbook file. */
  file: string;
  /** Directory the playbook lives in: relative paths in the playbook resolve against it. */
  dir: string;
  name: string;
  version: string;
  group: string;
  hosts: Host[];
  transport: TransportSpec;
  waves: WaveSpec;
  providers: Record<string, ProviderSpec>;
  steps: StepSpec[];
  verify: GateSpec[];
  /** Checks evaluated every `interval` while a wave runs: a failure stops the wave at once. */
  watch: GateSpec[];
  onFailure: OnFailure;
  /** Where the journal and the lock live (default: files in .graywave/<release>/). */
  state?: { type: string; [option: string]: unknown };
  /** Webhook notifications of run transitions (src/notify). */
  notify?: import('../notify/config.js').NotifySpec[];
  switchover?: { atPercent: number; steps: StepSpec[] };
  /** Release-level routing rules (src/routing): published before wave 1, widened after each wave, finished at the end. */
  routing?: RoutingSpec[];
  /** Playbook-wide `restoreTimeout`: how long a restore waits for the host to read back as serving (default 2m). */
  restoreTimeoutMs?: number;
  /** The hotfix policy: a canary, then one wave; gates marked skipOnHotfix are skipped. Always carries a reason. */
  hotfix?: { reason: string };
}
