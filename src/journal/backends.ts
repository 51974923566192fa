import type { Playbook } from '../playbook/types.js';
import { FileBackend, type StateBackend } from './backend.js';

/**
 * The state backend a playbook asks for (`state:`; default: files next to the playbook). One line per backend.
 * `dir` is the local release directory (logs always stay local).
 */
export function createBackend(pb: Playbook, dir: string): StateBackend {
  const spec = pb.state ?? { type: 'file' };
  switch (spec.type) {
    case 'file':
      return new FileBackend(dir);
    default:
      throw new Error(`unknown state backend ${spec.type}`);
  }
}
