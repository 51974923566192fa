import type { Gate } from './types.js';
import { runGate } from './run.js';
import { httpGate } from './http.js';
import { queryGate } from './query.js';
import { compareGate } from './compare.js';
import { approveGate } from './approve.js';
import { judgeGate } from './judge.js';
import { greenOnlyGate } from './green-only.js';

/** Every verification gate kind: one line per gate. */
export const gates: Gate[] = [runGate, httpGate, queryGate, compareGate, judgeGate, greenOnlyGate, approveGate];

export function findGate(key: string): Gate | undefined {
  return gates.find((g) => g.key === key);
}
