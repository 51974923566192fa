import type { JournalRecord } from '../journal/records.js';

/** One line of the audit trail: who did what, when, and why. */
export interface AuditEntry {
  t: string;
  /** run, resume, rollback, approve, promote, abort, unlock, force, create — or an outcome (halted, paused, done, rolled-back, frozen). */
  action: string;
  /** True for what a person did; false for what the release then did (outcomes). */
  operator: boolean;
  user?: string;
  host?: string;
  pid?: number;
  reason?: string;
  wave?: number;
  detail?: string;
}

const RUN: Record<string, { action: string; operator: boolean }> = {
  start: { action: 'run', operator: true },
  resume: { action: 'resume', operator: true },
  rollback: { action: 'rollback', operator: true },
  forced: { action: 'force', operator: true },
  halted: { action: 'halted', operator: false },
  paused: { action: 'paused', operator: false },
  done: { action: 'done', operator: false },
  'rolled-back': { action: 'rolled-back', operator: false },
  frozen: { action: 'frozen', operator: false },
};

/**
 * The audit trail of a release from its journal: every operator action recorded there (with user, host, pid and
 * reason when the record carries them) and the outcomes between them. Records of actions that carry no `by`
 * (older journals) are still listed, without a user.
 */
export function auditTrail(records: readonly JournalRecord[]): AuditEntry[] {
  const out: AuditEntry[] = [];
  // Journals with `operator` records name each action there (with its reason): the run/approve records they caused
  // are then outcomes, not a second copy of the action.
  const hasOperator = records.some((r) => r.type === 'operator');
  for (const r of records) {
    if (r.type === 'operator') {
      out.push({
        t: r.t,
        action: r.action,
        operator: true,
        ...r.by,
        ...(r.reason !== undefined ? { reason: r.reason } : {}),
        ...(r.detail !== undefined ? { detail: r.detail } : {}),
      });
    } else if (hasOperator && r.type === 'run' && (r.phase === 'start' || r.phase === 'resume' || r.phase === 'rollback')) {
      out.push({ t: r.t, action: r.phase === 'rollback' ? 'rolling back' : r.phase === 'start' ? 'started' : 'resumed', operator: false });
    } else if (hasOperator && r.type === 'wave' && r.phase === 'approved') {
      out.push({ t: r.t, action: 'approved', operator: false, wave: r.wave, ...(r.by ? { detail: `wave ${r.wave} by ${r.by.user}@${r.by.host}` } : {}) });
    } else if (r.type === 'header') {
      out.push({ t: r.t, action: 'create', operator: true, ...r.by, detail: `journal for ${r.release} ${r.version} (plan ${r.planHash})` });
    } else if (r.type === 'run') {
      const kind = RUN[r.phase] ?? { action: r.phase, operator: !!r.by };
      out.push({ t: r.t, action: kind.action, operator: kind.operator || !!r.by, ...(r.by ?? {}), ...(r.reason !== undefined ? { reason: r.reason } : {}) });
    } else if (r.type === 'wave' && r.phase === 'approved') {
      out.push({ t: r.t, action: 'approve', operator: true, ...(r.by ?? {}), wave: r.wave, detail: `wave ${r.wave} may be followed by wave ${r.wave + 1}` });
    } else if (r.type === 'wave' && r.phase === 'paused') {
      out.push({ t: r.t, action: 'waiting', operator: false, wave: r.wave, detail: r.detail });
    } else {
      // Other record types (e.g. an `unlock` or `abort` record another module adds) count when they name a person.
      const x = r as { type: string; t?: string; by?: { user: string; host: string; pid: number }; reason?: string; phase?: string };
      if (x.by && x.t && x.type !== 'step')
        out.push({ t: x.t, action: x.phase ? `${x.type} ${x.phase}` : x.type, operator: true, ...x.by, ...(x.reason ? { reason: x.reason } : {}) });
    }
  }
  return out;
}

/** Text lines for `graywave log`. */
export function auditText(entries: AuditEntry[]): string {
  if (!entries.length) return 'no actions recorded';
  return entries
    .map((e) => {
      const who = e.user ? `${e.user}@${e.host}${e.pid !== undefined ? ` pid ${e.pid}` : ''}` : e.operator ? '(who: not recorded)' : '';
      const time = e.t.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
      const what = e.operator ? e.action : `  → ${e.action}`;
      return [time, what.padEnd(12), who, e.detail ?? '', e.reason ? `reason: ${e.reason}` : ''].filter((s) => s !== '').join('  ');
    })
    .join('\n');
}
