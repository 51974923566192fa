/**
 * The `tls:` option as playbook data: its schema and the load-time check that the files it names can be read.
 * Plain configuration (zod and a stat of each file), kept apart from the TLS runtime in src/transport/tls.ts so
 * that the playbook loader reads no transport code.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { secretRef } from './secrets.js';

/** Every parsed `tls` object, so the playbook loader can find them wherever a schema put one (see tlsFileIssues). */
const parsedTls = new WeakSet<object>();

const pemFile = z.string().min(1, 'a PEM file path');

export const tlsOptions = z
  .object({
    ca: z
      .union([pemFile, z.array(pemFile).min(1)])
      .optional()
      .describe('PEM file(s) of the CA(s) that sign the server certificate, trusted in place of the system CAs (e.g. ./certs/internal-ca.pem).'),
    insecureSkipVerify: z.boolean().default(false).describe('Accept any server certificate (warned once per run); never together with ca.'),
    cert: pemFile.optional().describe('Client certificate (PEM) for mutual TLS; needs key.'),
    key: secretRef.optional().describe("The client certificate's private key, a secret: { file: PATH } or { env: NAME }."),
  })
  .strict()
  .describe('HTTPS settings (src/transport/tls.ts): extra CA files, a client certificate and key, or insecureSkipVerify.')
  .superRefine((o, ctx) => {
    if (o.cert !== undefined && o.key === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['key'], message: 'a client certificate (cert) needs its key: key: { file: PATH } or { env: NAME }' });
    }
    if (o.key !== undefined && o.cert === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['cert'], message: 'a client key needs its certificate: cert: PATH.pem' });
    }
    if (o.insecureSkipVerify && o.ca !== undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['ca'], message: 'ca is never checked when insecureSkipVerify is true: keep one of them' });
    }
  })
  .transform((o) => {
    parsedTls.add(o);
    return o;
  });
export type TlsOptions = z.output<typeof tlsOptions>;

export function caList(o: TlsOptions): string[] {
  return o.ca === undefined ? [] : typeof o.ca === 'string' ? [o.ca] : o.ca;
}

export function fsProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return code ?? (err as Error).message;
}

/** Why `file` (relative to `dir`) cannot be read, or undefined when it can. Nothing is read. */
function unreadable(dir: string, file: string): string | undefined {
  const path = resolve(dir, file);
  try {
    if (!statSync(path).isFile()) return 'not a regular file';
    accessSync(path, constants.R_OK);
    return undefined;
  } catch (err) {
    return fsProblem(err);
  }
}

/**
 * The files of every `tls` option inside a parsed value (provider options, gate parameters) that cannot be read,
 * each with its path inside that value (e.g. ['tls', 'ca']), for the playbook loader to report at FILE:LINE:COL.
 */
export function tlsFileIssues(parsed: unknown, dir: string): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  const walk = (v: unknown, path: (string | number)[], depth: number): void => {
    if (v === null || typeof v !== 'object' || depth > 8) return;
    if (parsedTls.has(v)) {
      const o = v as TlsOptions;
      const files: [(string | number)[], string][] = [];
      if (typeof o.ca === 'string') files.push([['ca'], o.ca]);
      else (o.ca ?? []).forEach((f, i) => files.push([['ca', i], f]));
      if (o.cert !== undefined) files.push([['cert'], o.cert]);
      if (o.key && 'file' in o.key) files.push([['key', 'file'], o.key.file]);
      for (const [sub, file] of files) {
        const why = unreadable(dir, file);
        if (why) out.push({ path: [...path, ...sub], message: `cannot read ${file} (${why})` });
      }
      return;
    }
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i], depth + 1));
    else for (const [k, x] of Object.entries(v)) walk(x, [...path, k], depth + 1);
  };
  walk(parsed, [], 0);
  return out;
}
