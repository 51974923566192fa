/** decideJournal(): what run / resume / rollback do with the journal they find, as a table. */
import { describe, expect, it } from 'vitest';
import { decideJournal, type JournalDecision, type JournalMode } from '../../src/app/journal-policy.js';
import type { RunStatus } from '../../src/journal/replay.js';

const SAME = 'plan-a';
const OTHER = 'plan-b';

describe('decideJournal', () => {
  const rows: [JournalMode, 'none' | 'same' | 'other', RunStatus, boolean, JournalDecision][] = [
    // no journal yet
    ['run', 'none', 'new', false, { kind: 'use' }],
    ['run', 'none', 'new', true, { kind: 'use' }],
    ['existing', 'none', 'new', false, { kind: 'refuse', why: 'no-journal' }],
    ['existing', 'none', 'new', true, { kind: 'refuse', why: 'no-journal' }],
    // a journal of this plan
    ['run', 'same', 'done', false, { kind: 'use' }],
    ['run', 'same', 'done', true, { kind: 'use' }],
    ['run', 'same', 'halted', false, { kind: 'refuse', why: 'in-progress' }],
    ['run', 'same', 'running', false, { kind: 'refuse', why: 'in-progress' }],
    ['run', 'same', 'paused', false, { kind: 'refuse', why: 'in-progress' }],
    ['run', 'same', 'frozen', false, { kind: 'refuse', why: 'in-progress' }],
    ['run', 'same', 'halted', true, { kind: 'archive' }],
    ['run', 'same', 'frozen', true, { kind: 'archive' }],
    ['run', 'same', 'rolled-back', false, { kind: 'archive' }],
    ['existing', 'same', 'halted', false, { kind: 'use' }],
    ['existing', 'same', 'done', false, { kind: 'use' }],
    ['existing', 'same', 'rolled-back', true, { kind: 'use' }],
    // a journal of another plan
    ['run', 'other', 'done', false, { kind: 'archive' }],
    ['run', 'other', 'rolled-back', false, { kind: 'archive' }],
    ['run', 'other', 'halted', false, { kind: 'refuse', why: 'other-plan' }],
    ['run', 'other', 'halted', true, { kind: 'archive' }],
    ['existing', 'other', 'halted', false, { kind: 'refuse', why: 'other-plan' }],
    ['existing', 'other', 'done', false, { kind: 'refuse', why: 'other-plan' }],
    ['existing', 'other', 'halted', true, { kind: 'force' }],
  ];
  it.each(rows)('%s, journal %s, %s, force %s', (mode, journal, status, force, want) => {
    const header = journal === 'none' ? undefined : { planHash: journal === 'same' ? SAME : OTHER };
    expect(decideJournal(mode, { header, status }, SAME, force)).toEqual(want);
  });
});
