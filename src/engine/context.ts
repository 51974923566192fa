import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Playbook } from '../playbook/types.js';
import type { Transport } from '../transport/types.js';
import type { Secrets } from '../util/secrets.js';
import type { Journal } from '../journal/journal.js';
import type { EventSink } from './events.js';
import type { ProviderSet } from './providers.js';
import type { Plan } from '../plan/build.js';
import type { ControlRequest } from '../journal/records.js';

/** Sleeps, and wakes early (rejecting) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason ?? new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Everything the engine needs, built once per command by src/app. */
export interface EngineDeps {
  playbook: Playbook;
  plan: Plan;
  journal: Journal;
  transport: Transport;
  providers: ProviderSet;
  secrets: Secrets;
  emit: EventSink;
  /** Directory for per-host logs (`<state>/logs`). */
  logDir: string;
  /** Aborted on Ctrl-C: in-flight steps are stopped and the release halts cleanly. */
  signal: AbortSignal;
  /** Pending operator requests (abort, promote) posted by other processes; polled while the release runs. */
  controls?: () => Promise<ControlRequest[]>;
  /** Asks a person (terminal); absent off a terminal, where an approval pause ends the run with exit 4. */
  approve?: (question: string) => Promise<boolean>;
  /** `--limit`: only these hosts run; the rest of the fleet stays pending in the journal. */
  limit?: Set<string>;
}

/**
 * Appends to one host's log file through a descriptor kept open while the host is in flight (one open per host,
 * not per line: at 10,000 hosts that is the difference between seconds and nothing). Secrets are masked on the
 * way in. A log that cannot be written never stops a release: the journal is the truth.
 */
export class HostLog {
  private readonly file: string;
  private fd: number | undefined;
  private static readonly dirsMade = new Set<string>();

  constructor(
    dir: string,
    host: string,
    private readonly secrets: Secrets,
  ) {
    if (!HostLog.dirsMade.has(dir)) {
      mkdirSync(dir, { recursive: true });
      HostLog.dirsMade.add(dir);
    }
    this.file = join(dir, `${host}.log`);
  }

  /** Output not yet ended by a newline: masked and written once its line is complete, so a secret split across
   * two chunks of command output is still masked. */
  private pending = '';

  write(text: string): void {
    this.pending += text;
    const end = this.pending.lastIndexOf('\n');
    if (end < 0 && this.pending.length < 64 * 1024) return;
    const cut = end < 0 ? this.pending.length : end + 1;
    this.flush(this.pending.slice(0, cut));
    this.pending = this.pending.slice(cut);
  }

  private flush(text: string): void {
    if (!text) return;
    try {
      if (this.fd === undefined) {
        try {
          this.fd = openSync(this.file, 'a');
        } catch {
          // The directory may have been removed since this process first made it.
          mkdirSync(dirname(this.file), { recursive: true });
          this.fd = openSync(this.file, 'a');
        }
      }
      writeSync(this.fd, this.secrets.mask(text));
    } catch {
      /* see above */
    }
  }

  line(text: string): void {
    this.write(`${new Date().toISOString()} ${text}\n`);
  }

  close(): void {
    this.flush(this.pending);
    this.pending = '';
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
    this.fd = undefined;
  }
}

/** Keeps the last lines of a command's output, to show with its failure. */
export class Tail {
  private lines: string[] = [];
  private partial = '';
  constructor(private readonly max = 10) {}
  push(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    this.lines.push(...parts);
    if (this.lines.length > this.max) this.lines = this.lines.slice(-this.max);
  }
  get(): string[] {
    return [...this.lines, ...(this.partial ? [this.partial] : [])].slice(-this.max);
  }
  clear(): void {
    this.lines = [];
    this.partial = '';
  }
}
