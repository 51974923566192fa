import type { Gate } from './types.js';
import { runGate } from './run.js';

/** Every verification gate kind: one line per gate. */
export const gates: Gate[] = [
  runGate,
];

export function findGate(key: string): Gate | undefined {
  return gates.find((g) => g.key === key);
}
