import { cannotReadMessage } from '../messages.js';
import { readFileSync, statSync } from 'node:fs';
import type { ConfigIssue } from '../../errors.js';
import { Source } from '../source.js';

const MAX_FILE_BYTES = 1024 * 1024;

/** Reads a playbook or inventory file (at most 1 MiB) into a Source; a problem goes to `issues`. */
export function readSource(file: string, issues: ConfigIssue[]): Source | undefined {
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_FILE_BYTES) {
      issues.push({ file, line: 1, col: 1, message: `file is ${st.size} bytes; playbooks and inventories are limited to ${MAX_FILE_BYTES}` });
      return undefined;
    }
    text = readFileSync(file, 'utf8');
  } catch (err) {
    issues.push({ file, line: 1, col: 1, message: cannotReadMessage(file, err) });
    return undefined;
  }
  return new Source(file, text);
}
