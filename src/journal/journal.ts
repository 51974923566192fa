import { closeSync, existsSync, fdatasyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
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
      throw new GraywaveError(`journal ${path} is corrupt at line ${i + 1}`, 1, 'the journal is append-only: restore it from a copy, or move it aside to start the release again');
    }
  });
  return { records, goodBytes: Buffer.byteLength(text.slice(0, complete)), torn };
}

/**
 * Append-only JSON Lines journal. `append` resolves only after the record is on disk (fdatasync), so the engine
 * never takes a side effect whose predecessor is not recorded. Appends that arrive together share one fsync
 * (group commit): with 200 hosts in flight the cost per record stays constant instead of one disk flush each.
 */
export class Journal {
  private fd: number;
  private queue: { line: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  private scheduled = false;
  private broken: Error | undefined;
  readonly records: JournalRecord[];

  private constructor(readonly path: string, records: JournalRecord[], goodBytes: number) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, existsSync(path) ? 'r+' : 'w+');
    ftruncateSync(this.fd, goodBytes);
    this.records = records;
    this.position = goodBytes;
  }
  private position: number;

  static open(path: string): Journal {
    const { records, goodBytes } = readJournal(path);
    return new Journal(path, records, goodBytes);
  }

  append(record: JournalRecord): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    this.records.push(record);
    return new Promise((resolve, reject) => {
      this.queue.push({ line: JSON.stringify(record) + '\n', resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue.splice(0);
    if (!batch.length) return;
    try {
      const buf = Buffer.from(batch.map((b) => b.line).join(''));
      let written = 0;
      while (written < buf.length) written += writeSync(this.fd, buf, written, buf.length - written, this.position + written);
      fdatasyncSync(this.fd);
      this.position += buf.length;
      for (const b of batch) b.resolve();
    } catch (err) {
      this.broken = new GraywaveError(
        `journal ${this.path} cannot be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): no further side effect is taken`,
        1,
        'free disk space or fix permissions, then `graywave resume`',
      );
      for (const b of batch) b.reject(this.broken);
    }
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }
}
