import type { EngineDeps } from '../engine/context.js';
import { HostLog } from '../engine/context.js';
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

  private nextSeq(): number {
    return this.records().reduce((m, r) => Math.max(m, r.seq ?? 0), 0) + 1;
  }

  /** Brings every rule to its state at (phase, wave) and confirms it. Throws (after recording) on the first failure. */
  async at(phase: RoutingPhase, wave: number): Promise<void> {
    for (const spec of this.specs) {
      const confirmed = this.records().some((r) => r.rule === spec.name && r.wave === wave && r.phase === 'verified' && (r.data as { of?: string })?.of === phase);
      if (confirmed) continue;
      if (phase === 'final' && spec.end === 'keep') continue;
      const ctx = this.ctx();
      try {
        if (phase === 'final' && spec.end === 'remove') {
          const ok = await this.undo(spec.name);
          if (!ok) throw new Error('removing its changes failed (see the journal)');
          await this.record({ rule: spec.name, phase: 'verified', wave, data: { of: phase, observed: 'removed' } });
          continue;
        }
        const prior = changesInEffect(this.deps.journal.records, spec.name).at(-1)?.data;
        const change = await this.rule(spec).apply(this.point(phase, wave), ctx, prior);
        if (change) {
          await this.record({ rule: spec.name, phase, wave, seq: this.nextSeq(), data: change.data });
          ctx.log(`routing ${spec.name} (${phase}, wave ${wave}): ${change.summary}`);
        }
        const observed = await this.rule(spec).verify(this.point(phase, wave), ctx);
        ctx.log(`routing ${spec.name}: read back: ${observed}`);
        await this.record({ rule: spec.name, phase: 'verified', wave, data: { of: phase, observed } });
      } catch (err) {
        const error = this.deps.secrets.mask((err as Error).message);
        await this.record({ rule: spec.name, phase: 'failed', wave, error, data: { of: phase } });
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
        return false;
      }
      try {
        await this.rule(spec).undo(c.data, this.ctx());
        await this.record({ rule: c.rule, phase: 'undone', wave: c.wave, seq: c.seq });
        this.log.line(`routing ${c.rule}: undid change ${c.seq} (${c.phase}, wave ${c.wave})`);
      } catch (err) {
        const error = this.deps.secrets.mask((err as Error).message);
        await this.record({ rule: c.rule, phase: 'undo-failed', wave: c.wave, seq: c.seq, error });
        this.log.line(`routing ${c.rule}: undo of change ${c.seq} failed: ${error}`);
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
