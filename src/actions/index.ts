import type { Action } from './types.js';
import { runAction } from './run.js';
import { drainAction, restoreAction, relabelAction } from './provider-steps.js';
import { waitDrainedAction } from './wait-drained.js';
import { deployAction } from './deploy.js';

/** Every step kind a pipeline can use: one line per action. */
export const actions: Action[] = [runAction, drainAction, restoreAction, relabelAction, waitDrainedAction, deployAction];

export function findAction(key: string): Action | undefined {
  return actions.find((a) => a.key === key);
}
