import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { Journal, readJournal } from './journal.js';
import { acquireLock, forceUnlock, readLock, type LockInfo } from './lock.js';
import type { ControlRequest, JournalRecord } from './records.js';

/**
 * Where one release's state lives: its journal, its lock and the control requests (abort/promote) that other
 * processes send to the engine holding the lock. The default is a directory (`.graywave/<release>/`); with
 * `state: {type: etcd|zookeeper}` it is a cluster, so any machine can watch, abort or resume the release.
 */
export interface StateBackend {
  /** For messages: a directory or a cluster key. */
  readonly where: string;
  /** Takes the release lock; throws LockHeldError naming the holder. Returns the release function. */
  acquireLock(info: Omit<LockInfo, 'user' | 'host' | 'pid' | 'startedAt'>, unlockHint: string): Promise<() => Promise<void>>;
  readLock(): Promise<LockInfo | undefined>;
  /** Removes the lock (refusing a live holder on this machine) and says whose it was. */
  forceUnlock(): Promise<LockInfo | undefined>;
  /** Opens the journal for appending (creating it when absent), with every record so far. */
  openJournal(): Promise<Journal>;
  /** Every record so far, read-only (status, log, report). */
  readRecords(): Promise<JournalRecord[]>;
  /** Sets the current journal aside (a new release of the same name starts over). */
  archiveJournal(): Promise<void>;
  postControl(request: ControlRequest): Promise<void>;
  readControls(): Promise<ControlRequest[]>;
  close(): Promise<void>;
}

/** What a state backend is given when a command opens it. */
export interface StateBackendEnv {
  /** The release name (a cluster backend keeps its keys under it). */
  release: string;
  /** The local release directory (logs always stay local; the file backend keeps everything there). */
  dir: string;
  /** The playbook's directory: secret references (`{ file: … }`) resolve against it. */
  playbookDir: string;
}

/**
 * A kind of state backend (`state: {type: …}`): one file exporting one of these plus one line in
 * src/journal/backends.ts — like provider types. The playbook loader checks `options` (with positions) and never
 * opens anything; `create` gets the options as `options` parsed them.
 */
export interface StateBackendType<O = any> {
  type: string;
  options: z.ZodType<O, z.ZodTypeDef, any>;
  create(options: O, env: StateBackendEnv): StateBackend;
  /** For the reference (graywave explain, docs/reference.md). */
  doc?: import('../reference/doc.js').TypeDoc;
}

/** `state: {type: file}` (the default): no options. */
export const fileState: StateBackendType<Record<string, never>> = {
  type: 'file',
  options: z.object({}).strict(),
  create: (_o, env) => new FileBackend(env.dir),
  doc: {
    summary: "The default: the journal (fsync'd, append-only) and the lock are files in .graywave/<release>/ next to the playbook (--state-dir moves them).",
    checkedAgainst: 'ext4 on this machine; kill -9 at 50 seeded points',
    example: 'type: file',
  },
};

/** The default backend: files in `<stateDir>/<release>/`. */
export class FileBackend implements StateBackend {
  readonly where: string;
  private readonly journalPath: string;
  private readonly lockPath: string;
  private readonly controlPath: string;

  constructor(dir: string) {
    this.where = dir;
    mkdirSync(dir, { recursive: true });
    this.journalPath = join(dir, 'journal.jsonl');
    this.lockPath = join(dir, 'lock');
    this.controlPath = join(dir, 'control.jsonl');
  }

  async acquireLock(info: { command: string; reason?: string }, unlockHint: string): Promise<() => Promise<void>> {
    const release = acquireLock(this.lockPath, info.command, info.reason, unlockHint);
    return async () => release();
  }

  async readLock(): Promise<LockInfo | undefined> {
    return readLock(this.lockPath);
  }

  async forceUnlock(): Promise<LockInfo | undefined> {
    return forceUnlock(this.lockPath);
  }

  async openJournal(): Promise<Journal> {
    return Journal.open(this.journalPath);
  }

  async readRecords(): Promise<JournalRecord[]> {
    return existsSync(this.journalPath) ? readJournal(this.journalPath).records : [];
  }

  async archiveJournal(): Promise<void> {
    const stamp = Date.now();
    if (existsSync(this.journalPath)) renameSync(this.journalPath, this.journalPath.replace(/\.jsonl$/, `.${stamp}.jsonl`));
    if (existsSync(this.controlPath)) renameSync(this.controlPath, this.controlPath.replace(/\.jsonl$/, `.${stamp}.jsonl`));
  }

  async postControl(request: ControlRequest): Promise<void> {
    // One short O_APPEND write per request: concurrent writers cannot interleave inside a line.
    appendFileSync(this.controlPath, JSON.stringify(request) + '\n');
  }

  async readControls(): Promise<ControlRequest[]> {
    if (!existsSync(this.controlPath)) return [];
    return readFileSync(this.controlPath, 'utf8')
      .split('\n')
      .filter(Boolean)
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as ControlRequest];
        } catch {
          return [];
        }
      });
  }

  async close(): Promise<void> {}
}
