import { z } from 'zod';
import type { Host } from '../../playbook/types.js';
import { LocalTransport } from '../../transport/local.js';
import type { ExecOptions, ExecResult, Transport } from '../../transport/types.js';
import type { ProviderEnv } from '../types.js';

/**
 * `at: [local, 10.0.0.2]` — where a load balancer runs. `local` is this machine; any other entry is an address
 * reached through the playbook's transport. Shared by the nginx and HAProxy providers.
 */
export const atOption = z
  .array(z.string().min(1))
  .min(1)
  .refine((a) => new Set(a).size === a.length, { message: 'lists the same place twice' })
  .describe('Where nginx runs: `local` (this machine) and/or addresses reached through the transport; every place is changed.')
  .default(['local']);

export interface Place {
  /** As written in `at` (used in messages and in the journal). */
  label: string;
  local: boolean;
  host: Host;
  transport: Transport;
}

export function places(at: string[], env: ProviderEnv): Place[] {
  return at.map((label) =>
    label === 'local'
      ? { label, local: true, host: { name: 'local', address: '127.0.0.1', vars: {}, labels: {} }, transport: new LocalTransport(env.dir) }
      : { label, local: false, host: { name: label, address: label, vars: {}, labels: {} }, transport: env.transport },
  );
}

export function run(place: Place, command: string, opts: ExecOptions): Promise<ExecResult> {
  return place.transport.exec(place.host, command, opts);
}

/** `exit 1: <stderr or stdout>` — short, for error messages. */
export function why(res: ExecResult): string {
  const how = res.timedOut ? 'timed out' : res.code === null ? `killed by ${res.signal ?? 'a signal'}` : `exit ${res.code}`;
  const out = (res.stderr.trim() || res.stdout.trim()).split('\n').slice(-5).join(' | ');
  return out ? `${how}: ${out}` : how;
}

const queues = new Map<string, Promise<unknown>>();

/**
 * Runs `fn` after every earlier call with the same key has settled. Hosts of one wave drain concurrently, and
 * each does read-modify-write on the same LB config file: without this they would overwrite each other's edit.
 */
export function serialize<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const before = queues.get(key) ?? Promise.resolve();
  const mine = before.then(fn, fn);
  const tail = mine.catch(() => undefined);
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return mine;
}

/**
 * Applies `change` at every place in order; when one fails, reverts the places already changed (newest first)
 * and rethrows with what the revert did. All or none: a host must not stay drained on half of the LB nodes.
 */
export async function allOrNone<T>(
  list: Place[],
  change: (p: Place) => Promise<T>,
  revert: (p: Place, result: T) => Promise<void>,
): Promise<{ place: Place; result: T }[]> {
  const done: { place: Place; result: T }[] = [];
  for (const place of list) {
    try {
      done.push({ place, result: await change(place) });
    } catch (err) {
      const notes: string[] = [];
      for (const d of [...done].reverse()) {
        try {
          await revert(d.place, d.result);
          notes.push(`put back on ${d.place.label}`);
        } catch (e) {
          notes.push(`could NOT put back on ${d.place.label}: ${(e as Error).message}`);
        }
      }
      if (notes.length > 0 && err instanceof Error) err.message += ` (${notes.join('; ')})`;
      throw err;
    }
  }
  return done;
}
