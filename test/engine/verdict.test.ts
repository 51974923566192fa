/** gateVerdict(): the pure verdict on a gate's measurements, as a table. */
import { describe, expect, it } from 'vitest';
import { gateVerdict, type Measurement } from '../../src/engine/verdict.js';

const pass: Measurement = { status: 'pass', observed: 'exit 0' };
const fail: Measurement = { status: 'fail', observed: 'exit 1' };
const err: Measurement = { status: 'error', observed: 'error: connection refused' };

describe('gateVerdict', () => {
  const rows: [string, Measurement[], { errorLimit: number; promotion?: string; interrupted?: boolean }, object][] = [
    ['nothing measured yet', [], { errorLimit: 3 }, { status: 'measure-again', errors: 0 }],
    ['a pass', [pass], { errorLimit: 3 }, { status: 'pass', observed: 'exit 0' }],
    ['a failure', [fail], { errorLimit: 3 }, { status: 'fail', observed: 'exit 1' }],
    ['one error under the limit is measured again', [err], { errorLimit: 3 }, { status: 'measure-again', errors: 1 }],
    ['two errors under the limit', [err, err], { errorLimit: 3 }, { status: 'measure-again', errors: 2 }],
    [
      'errors up to the limit are an error, not a failure',
      [err, err, err],
      { errorLimit: 3 },
      { status: 'error', observed: 'error: connection refused (3 consecutive errors)' },
    ],
    ['errorLimit 1: the first error decides', [err], { errorLimit: 1 }, { status: 'error', observed: 'error: connection refused' }],
    ['a pass after errors passes', [err, err, pass], { errorLimit: 3 }, { status: 'pass' }],
    ['only consecutive errors count', [err, err, pass, err], { errorLimit: 3 }, { status: 'measure-again', errors: 1 }],
    ['a failure after errors fails', [err, fail], { errorLimit: 3 }, { status: 'fail' }],
    [
      'a promotion passes a gate not yet measured',
      [],
      { errorLimit: 3, promotion: 'promoted by ana@ci: ok' },
      { status: 'skipped', observed: 'skipped: promoted by ana@ci: ok' },
    ],
    [
      'a promotion passes a failed gate',
      [fail],
      { errorLimit: 3, promotion: 'promoted (--full)' },
      { status: 'skipped', observed: 'skipped: promoted (--full)' },
    ],
    ['a promotion passes an erroring gate', [err], { errorLimit: 3, promotion: 'promoted (--full)' }, { status: 'skipped' }],
    ['a pass stays a pass under a promotion', [pass], { errorLimit: 3, promotion: 'promoted (--full)' }, { status: 'pass' }],
    ['Ctrl-C: a failure is an interrupt', [fail], { errorLimit: 3, interrupted: true }, { status: 'interrupted' }],
    ['Ctrl-C: an error is an interrupt', [err], { errorLimit: 3, interrupted: true }, { status: 'interrupted' }],
    ['Ctrl-C: a pass still passes', [pass], { errorLimit: 3, interrupted: true }, { status: 'pass' }],
    ['a promotion wins over Ctrl-C', [fail], { errorLimit: 3, interrupted: true, promotion: 'p' }, { status: 'skipped' }],
    ['errorLimit below 1 counts as 1', [err], { errorLimit: 0 }, { status: 'error' }],
  ];
  it.each(rows)('%s', (_name, ms, input, want) => {
    const v = gateVerdict(ms, input);
    expect(v).toMatchObject(want);
  });

  it('does not change its input', () => {
    const ms = [err, err];
    const copy = JSON.stringify(ms);
    gateVerdict(ms, { errorLimit: 2 });
    expect(JSON.stringify(ms)).toBe(copy);
  });
});
