import { closeSync, existsSync, fdatasync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { GraywaveError } from '../errors.js';
import type { JournalRecord } from './records.js';

/**
 * Reads a journal file. A last line without its newline was being written when the process died: it was never
 * acknowledged (append resolves only after the whole line is on disk), so it is dropped, never a crash.
 */
export function readJournal(path: string): { records: JournalRecord[]; goodBytes: number; torn: boolean } {
  if (!existsSync(path)) return { records: [], goodBytes: 0, torn: false };
  const text = readFileSync(path, 'utf8');
  const complete = text.lastIndexOf('\n') + 1;
  const torn = complete < text.length;
  const records: JournalRecord[] = [];
  const lines = text.slice(0, complete).split('\n');
  lines.pop();
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      records.push(JSON.parse(line) as JournalRecord);
    } catch {
      throw new GraywaveError(
        `journal ${path} is corrupt at line ${i + 1}`,
        1,
        'the journal is append-only: restore it from a copy, or move it aside to start the release again',
      );
    }
  });
  return { records, goodBytes: Buffer.byteLength(text.slice(0, complete)), torn };
}

/** Where journal lines are kept durably: a local file (default), or a shared etcd/ZooKeeper cluster. */
export interface JournalStore {
  /** For messages: the file path or the cluster key. */
  readonly where: string;
  /** Appends lines in order; resolves only once they are durable (fsync, or acknowledged by a quorum). */
  append(lines: string[]): Promise<void>;
  close(): Promise<void>;
}

/** The default store: `.graywave/<release>/journal.jsonl`, written with pwrite + fdatasync. */
export class FileJournalStore implements JournalStore {
  private readonly fd: number;
  private position: number;

  constructor(
    readonly where: string,
    goodBytes: number,
  ) {
    mkdirSync(dirname(where), { recursive: true });
    this.fd = openSync(where, existsSync(where) ? 'r+' : 'w+');
    // Drop a torn tail so the next record starts on a line of its own.
    ftruncateSync(this.fd, goodBytes);
    this.position = goodBytes;
  }

  async append(lines: string[]): Promise<void> {
    const buf = Buffer.from(lines.join(''));
    let written = 0;
    while (written < buf.length) written += writeSync(this.fd, buf, written, buf.length - written, this.position + written);
    this.position += buf.length;
    // Asynchronous flush: while the disk syncs, the event loop goes on and the next batch gathers (group commit).
    await new Promise<void>((resolve, reject) => fdatasync(this.fd, (err) => (err ? reject(err) : resolve())));
  }

  async close(): Promise<void> {
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }
}

/**
 * Append-only JSON Lines journal. `append` resolves only after the record is durable, so the engine never takes
 * a side effect whose predecessor is not recorded. Appends that arrive together share one flush (group commit):
 * with 200 hosts in flight the cost per record stays constant instead of one disk flush each.
 */
export class Journal {
  private queue: { line: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  private flushing = false;
  private broken: Error | undefined;

  constructor(
    private readonly store: JournalStore,
    readonly records: JournalRecord[],
  ) {}

  get path(): string {
    return this.store.where;
  }

  /** Opens (or creates) a file journal. */
  static open(path: string): Journal {
    const { records, goodBytes } = readJournal(path);
    return new Journal(new FileJournalStore(path, goodBytes), records);
  }

  append(record: JournalRecord): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    this.records.push(record);
    return new Promise((resolve, reject) => {
      this.queue.push({ line: JSON.stringify(record) + '\n', resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length) {
      const batch = this.queue.splice(0);
      try {
        if (this.broken) throw this.broken;
        await this.store.append(batch.map((b) => b.line));
        for (const b of batch) b.resolve();
      } catch (err) {
        this.broken ??= new GraywaveError(
          `journal ${this.store.where} cannot be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): no further side effect is taken`,
          1,
          'free disk space, fix permissions or reach the state cluster, then `graywave resume`',
        );
        for (const b of batch) b.reject(this.broken);
      }
    }
    this.flushing = false;
  }

  close(): void {
    void this.store.close();
  }
}

/** A train journal's record without its `app` tag (src/journal/journal.ts JournalView): that app's record as its own journal would hold it. */
export function untag(r: JournalRecord): JournalRecord {
  const { app: _app, ...rest } = r as JournalRecord & { app?: string };
  return rest as JournalRecord;
}

/** The app a train journal's record belongs to (its `app` tag); undefined for the train's own records. */
export const appOf = (r: JournalRecord): string | undefined => (r as { app?: string }).app;

/** One part of a train journal's records: an app's (untagged, as its own journal would hold them) or, undefined, the train's own. */
export function partOf(records: readonly JournalRecord[], app: string | undefined): JournalRecord[] {
  return records.filter((r) => appOf(r) === app).map((r) => (app === undefined ? r : untag(r)));
}

/** Every write of a view goes to the train's one journal: a view has no store of its own. */
const NO_STORE: JournalStore = { where: '', append: async () => undefined, close: async () => undefined };

/**
 * One part of a release train's journal (src/engine/train.ts): an app's records (tagged `"app": NAME` in the one
 * journal of the train) or, with `app` undefined, the train's own. Appends go to the train's journal (durably, in
 * order with every other part), so one lock and one journal hold the whole train.
 */
export class JournalView extends Journal {
  constructor(
    private readonly whole: Journal,
    private readonly app: string | undefined,
  ) {
    // An app's records without their tag: the view is that app's journal as a playbook's would be.
    super(NO_STORE, partOf(whole.records, app));
  }

  override get path(): string {
    return this.whole.path;
  }

  override append(record: JournalRecord): Promise<void> {
    this.records.push(record);
    return this.whole.append(this.app === undefined ? record : ({ ...record, app: this.app } as unknown as JournalRecord));
  }

  override close(): void {
    /* the train's journal is closed by its owner */
  }
}
