import { join, resolve } from 'node:path';
import type { Playbook } from '../playbook/types.js';

/** `<stateDir or playbook dir/.graywave>/<release>`: the release's journal, lock and logs. */
export function releaseDir(pb: Playbook, stateDir?: string): string {
  return join(resolve(stateDir ?? join(pb.dir, '.graywave')), pb.name);
}

export function journalPath(pb: Playbook, stateDir?: string): string {
  return join(releaseDir(pb, stateDir), 'journal.jsonl');
}
