import type { EngineDeps } from '../engine/context.js';
import { HostLog } from '../engine/context.js';
import type { EngineEvent } from '../engine/events.js';
import type { JournalRecord } from '../journal/records.js';
import { createRule } from './index.js';
import type { RoutingContext, RoutingPhase, RoutingPoint, RoutingRule, RoutingSpec } from './types.js';

type RoutingRecord = Extract<JournalRecord, { type: 'routing' }>;
const CHANGES = new Set(['publish', 'widen', 'final']);
const now = () => new Date().toISOString();

/** Routing changes still in effect (recorded and not undone), oldest first, from the journal alone. */
export function changesInEffect(records: readonly JournalRecord[], rule?: string): RoutingRecord[] {
  const rs = records.filter((r): r is RoutingRecord => r.type === 'routing');
  const undone = new Set(rs.filter((r) => r.phase === 'undone').map((r) => r.seq));
  return rs.filter((r) => CHANGES.has(r.phase) && r.seq !== undefined && !undone.has(r.seq) && (rule === undefined || r.rule === rule));
}

/** Where one rule stands, from the journal alone (`graywave status`). */
export interface RoutingRuleState {
  rule: string;
  /**
   * verified: confirmed at its last point; applied: changed, not (yet) confirmed; failed: the last point failed;
   * undone: every change taken back (rollback); removed: taken out at the end (end: remove); undo-failed: a change
   * could not be taken back; not-applied: no record yet.
   */
  state: 'not-applied' | 'applied' | 'verified' | 'failed' | 'undone' | 'removed' | 'undo-failed';
  /** The last point the rule was brought to (and, when verified, confirmed at). */
  phase?: RoutingPhase;
  wave?: number;
  /** Summary of the newest change still in effect ("25% of unpinned requests to GREEN …"), when the journal has it. */
  detail?: string;
  /** Wave of that change, when it differs from `wave` (a later point needed no change). */
  changedAtWave?: number;
  /** The read-back at the last confirmed point. */
  observed?: string;
  error?: string;
  /** The point that failed (state failed), when it is not the last one reached. */
  failedAt?: { phase?: RoutingPhase; wave: number };
  /** Changes recorded and not undone. */
  inEffect: number;
  at?: string;
}

/** Each rule's current state from the journal's `routing` records (rules named in `names` first, in that order). */
export function routingState(records: readonly JournalRecord[], names: readonly string[] = []): RoutingRuleState[] {
  const rs = records.filter((r): r is RoutingRecord => r.type === 'routing');
  const order = [...new Set([...names, ...rs.map((r) => r.rule)])];
  return order.map((rule) => {
    const inEffect = changesInEffect(records, rule);
    const st: RoutingRuleState = { rule, state: 'not-applied', inEffect: inEffect.length };
    for (const r of rs.filter((x) => x.rule === rule)) {
      const data = (r.data ?? {}) as { of?: RoutingPhase; observed?: string };
      st.at = r.t;
      if (CHANGES.has(r.phase)) {
        Object.assign(st, { state: 'applied', phase: r.phase, wave: r.wave, error: undefined, failedAt: undefined });
      } else if (r.phase === 'verified') {
        const removed = data.of === 'final' && data.observed === 'removed';
        Object.assign(st, {
          state: removed ? 'removed' : 'verified',
          phase: data.of,
          wave: r.wave,
          observed: data.observed,
          error: undefined,
          failedAt: undefined,
        });
      } else if (r.phase === 'failed') {
        Object.assign(st, { state: 'failed', error: r.error, failedAt: { phase: data.of, wave: r.wave } });
      } else if (r.phase === 'undo-failed') {
        Object.assign(st, { state: 'undo-failed', error: r.error });
      } else if (r.phase === 'undone' && st.state !== 'undo-failed' && changesInEffect(records.slice(0, records.indexOf(r) + 1), rule).length === 0) {
        st.state = 'undone';
      }
    }
    // The change in effect: its summary was recorded with the confirmation of its point.
    const newest = inEffect.at(-1);
    if (newest) {
      const conf = rs.find((r) => r.rule === rule && r.phase === 'verified' && r.wave === newest.wave && (r.data as { of?: string })?.of === newest.phase);
      st.detail = (conf?.data as { summary?: string } | undefined)?.summary;
      if (newest.wave !== st.wave) st.changedAtWave = newest.wave;
    }
    return st;
  });
}

/**
 * Runs the playbook's `routing:` rules at the engine's three points (before wave 1, after each verified wave, at the
 * end) and undoes them on rollback. Every change is one journal record `{type: 'routing', rule, phase, wave, seq,
 * data}` written right after the change (data = what undo needs); a read-back that confirms it is recorded as
 * `phase: verified`, so resume neither re-applies nor re-checks a point that was confirmed. Undo goes newest first.
 */
export class RoutingRunner {
  private readonly rules = new Map<string, RoutingRule>();
  private readonly log: HostLog;

  constructor(private readonly deps: EngineDeps) {
    this.log = new HostLog(deps.logDir, '_routing', deps.secrets);
  }

  private get release(): string {
    return this.deps.playbook.name;
  }

  get specs(): RoutingSpec[] {
    return this.deps.playbook.routing ?? [];
  }

  private rule(spec: RoutingSpec): RoutingRule {
    let r = this.rules.get(spec.name);
    if (!r) this.rules.set(spec.name, (r = createRule(spec, this.env())));
    return r;
  }

  private env() {
    const { playbook, secrets, transport } = this.deps;
    return { dir: playbook.dir, secrets, transport };
  }

  private ctx(): RoutingContext {
    return { playbook: this.deps.playbook, env: this.env(), signal: this.deps.signal, log: (l) => this.log.line(l) };
  }

  point(phase: RoutingPhase, wave: number): RoutingPoint {
    const { plan, playbook } = this.deps;
    const names = new Set(plan.waves.filter((w) => w.index <= wave).flatMap((w) => w.hosts));
    const greenHosts = playbook.hosts.filter((h) => names.has(h.name));
    return { phase, wave, greenHosts, greenShare: playbook.hosts.length ? greenHosts.length / playbook.hosts.length : 0, final: phase === 'final' };
  }

  private records(): RoutingRecord[] {
    return this.deps.journal.records.filter((r): r is RoutingRecord => r.type === 'routing');
  }

  private async record(r: Omit<RoutingRecord, 't' | 'type'>): Promise<void> {
    await this.deps.journal.append({ type: 'routing', t: now(), ...r } as RoutingRecord);
  }

  /** Records a point of a rule as confirmed (what was read back, the change's summary) and tells the world. */
  private async confirmed(rule: string, phase: RoutingPhase, wave: number, observed: string, summary: string | undefined, changed: boolean): Promise<void> {
    await this.record({ rule, phase: 'verified', wave, data: { of: phase, observed, ...(summary !== undefined ? { summary } : {}) } });
    this.emit({
      event: 'routing.applied',
      release: this.release,
      rule,
      wave,
      phase,
      detail: summary ?? 'already in place, nothing changed',
      changed,
      observed,
    });
  }

  /** Routing events go out after their journal record (like every engine event); text is masked. */
  private emit(e: EngineEvent): void {
    this.deps.emit(e);
  }

  private nextSeq(): number {
    return this.records().reduce((m, r) => Math.max(m, r.seq ?? 0), 0) + 1;
  }

  /** Brings every rule to its state at (phase, wave) and confirms it. Throws (after recording) on the first failure. */
  async at(phase: RoutingPhase, wave: number): Promise<void> {
    for (const spec of this.specs) {
      const confirmed = this.records().some(
        (r) => r.rule === spec.name && r.wave === wave && r.phase === 'verified' && (r.data as { of?: string })?.of === phase,
      );
      if (confirmed) continue;
      if (phase === 'final' && spec.end === 'keep') continue;
      const ctx = this.ctx();
      try {
        if (phase === 'final' && spec.end === 'remove') {
          const ok = await this.undo(spec.name);
          if (!ok) throw new Error('removing its changes failed (see the journal)');
          await this.confirmed(spec.name, phase, wave, 'removed', 'its changes removed (end: remove)', true);
          continue;
        }
        const prior = changesInEffect(this.deps.journal.records, spec.name).at(-1)?.data;
        const change = await this.rule(spec).apply(this.point(phase, wave), ctx, prior);
        if (change) {
          await this.record({ rule: spec.name, phase, wave, seq: this.nextSeq(), data: change.data });
          ctx.log(`routing ${spec.name} (${phase}, wave ${wave}): ${change.summary}`);
        }
        const observed = this.deps.secrets.mask(await this.rule(spec).verify(this.point(phase, wave), ctx));
        ctx.log(`routing ${spec.name}: read back: ${observed}`);
        // The change's summary rides on the confirmation of its point: `graywave status` shows it as the rule's state.
        const summary = change ? this.deps.secrets.mask(change.summary) : undefined;
        await this.confirmed(spec.name, phase, wave, observed, summary, !!change);
      } catch (err) {
        const error = this.deps.secrets.mask((err as Error).message);
        await this.record({ rule: spec.name, phase: 'failed', wave, error, data: { of: phase } });
        this.emit({ event: 'routing.failed', release: this.release, rule: spec.name, wave, phase, error });
        throw new Error(`routing rule ${spec.name} (${phase}${wave ? ` after wave ${wave}` : ''}): ${error}`);
      }
    }
  }

  /** Undoes the changes still in effect (of one rule, or all), newest first. Stops at the first failure: false. */
  async undo(rule?: string): Promise<boolean> {
    const pending = changesInEffect(this.deps.journal.records, rule).reverse();
    for (const c of pending) {
      const spec = this.specs.find((s) => s.name === c.rule);
      if (!spec) {
        await this.record({ rule: c.rule, phase: 'undo-failed', wave: c.wave, seq: c.seq, error: 'the playbook no longer has this rule' });
        this.emit({ event: 'routing.failed', release: this.release, rule: c.rule, wave: c.wave, phase: 'undo', error: 'the playbook no longer has this rule' });
        return false;
      }
      try {
        await this.rule(spec).undo(c.data, this.ctx());
        await this.record({ rule: c.rule, phase: 'undone', wave: c.wave, seq: c.seq });
        this.log.line(`routing ${c.rule}: undid change ${c.seq} (${c.phase}, wave ${c.wave})`);
        this.emit({
          event: 'routing.undone',
          release: this.release,
          rule: c.rule,
          wave: c.wave,
          detail: `change ${c.seq} (${c.phase}${c.phase === 'publish' ? '' : `, wave ${c.wave}`})`,
        });
      } catch (err) {
        const error = this.deps.secrets.mask((err as Error).message);
        await this.record({ rule: c.rule, phase: 'undo-failed', wave: c.wave, seq: c.seq, error });
        this.log.line(`routing ${c.rule}: undo of change ${c.seq} failed: ${error}`);
        this.emit({ event: 'routing.failed', release: this.release, rule: c.rule, wave: c.wave, phase: 'undo', error });
        return false;
      }
    }
    return true;
  }

  async close(): Promise<void> {
    await Promise.all([...this.rules.values()].map((r) => r.close?.().catch(() => undefined)));
    this.rules.clear();
  }
}
