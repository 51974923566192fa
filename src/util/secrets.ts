import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';

/** Where a secret comes from. A secret is never written in the playbook itself. */
export const secretRef = z.union([z.object({ env: z.string().min(1) }).strict(), z.object({ file: z.string().min(1) }).strict()], {
  errorMap: () => ({ message: 'a secret is never written in the playbook: use { env: NAME } or { file: PATH }' }),
});
export type SecretRef = z.infer<typeof secretRef>;

/**
 * Resolves secret references and remembers every value it handed out, so that
 * logs, the journal, events and error messages can mask them (`***`).
 */
export class Secrets {
  private readonly values = new Set<string>();
  constructor(
    private readonly dir: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  resolve(ref: SecretRef): string {
    let value: string | undefined;
    if ('env' in ref) {
      value = this.env[ref.env];
      if (value === undefined || value === '') throw new Error(`secret env var ${ref.env} is not set`);
    } else {
      try {
        value = readFileSync(resolve(this.dir, ref.file), 'utf8').replace(/\r?\n$/, '');
      } catch {
        throw new Error(`secret file ${ref.file} cannot be read`);
      }
    }
    this.add(value);
    return value;
  }

  /** Register a value that must never be shown (tokens obtained at run time). */
  add(value: string): void {
    if (value.length >= 3) this.values.add(value);
  }

  mask(text: string): string {
    let out = text;
    for (const v of this.values) out = out.split(v).join('***');
    return out;
  }
}
