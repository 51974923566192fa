import { z } from 'zod';
import type { Gate } from './types.js';

/**
 * `- approve: true` — a person says go before the next wave. The engine handles it (terminal prompt, or
 * exit 4 and `graywave approve` off a terminal), exactly like `waves.pause: approve`; this entry makes the key valid.
 */
export const approveGate: Gate<true> = {
  doc: {
    options: { approve: 'true: a person approves after the wave.' },
    summary:
      'A person says go after the wave: a terminal prompt, or `graywave approve` from CI (the run ends with exit 4 until then). `waves.pause: approve` and `pause: { afterCanary: approve }` do the same without a verify entry.',
    checkedAgainst: 'the built CLI in a tmux 3.3 pseudo-terminal and off a terminal',
    example: '- approve: true',
  },
  key: 'approve',
  params: z.literal(true, { errorMap: () => ({ message: 'approve takes the value true' }) }),
  defaultName: () => 'approve',
  describe: () => 'a person approves the next wave',
  async run() {
    return { ok: true, observed: 'approval is handled by the engine' };
  },
};
