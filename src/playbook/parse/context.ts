import type { z } from 'zod';
import type { ConfigIssue } from '../../errors.js';
import type { topSchema } from '../schema.js';
import type { Path, Source } from '../source.js';
import type { Host } from '../types.js';

/** What every section parser gets: the playbook's source (issues go there), its raw data and its checked top level. */
export interface ParseContext {
  src: Source;
  /** The playbook's directory (relative paths resolve against it). */
  dir: string;
  /** The raw YAML data. */
  d: Record<string, unknown>;
  /** The top level as topSchema checked it (undefined when that failed: sections that need it are skipped). */
  top: z.infer<typeof topSchema> | undefined;
  /** Issues of other files (inventories). */
  issues: ConfigIssue[];
}

/** The roles of the declared providers, for checking what steps and gates use. */
export interface Uses {
  check(path: Path, key: string, uses: { provider: string; role: string }[]): void;
}

export type { Host };
