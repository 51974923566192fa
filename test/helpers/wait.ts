/**
 * The tests' one way to wait for something: poll an observable condition (a file appears, a journal record, a log
 * line, a port, a process) until it holds, bounded by a timeout that fails the test with what was awaited. Tests use
 * it instead of fixed sleeps, so a slow machine makes them slower, never wrong; a condition that never comes fails
 * them instead of passing by luck.
 */
export interface WaitOptions {
  /** Give up (fail) after this long; generous by default: it bounds a hang, it is not a performance target. */
  timeoutMs?: number;
  /** Poll interval. */
  everyMs?: number;
  /** Fail at once with this message when it returns one (e.g. the server being waited for has exited). */
  failIf?: () => string | undefined;
  /** Added to the timeout's message (e.g. the tail of a server's log). */
  detail?: () => string;
}

/**
 * Polls `probe` until it returns a value other than undefined, null or false, and returns that value. A probe that
 * throws counts as "not yet" (its last error is named if time runs out).
 */
export async function waitFor<T>(probe: () => Promise<T> | T, what: string, opts: WaitOptions = {}): Promise<Exclude<T, undefined | null | false>> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v as Exclude<T, undefined | null | false>;
    } catch (err) {
      lastError = err;
    }
    const failed = opts.failIf?.();
    if (failed !== undefined) throw new Error(`${what}: ${failed}`);
    if (Date.now() > deadline) {
      const why = lastError === undefined ? '' : ` (last probe: ${(lastError as Error).message ?? String(lastError)})`;
      const detail = opts.detail?.() ?? '';
      throw new Error(`${what}: not after ${timeoutMs} ms${why}${detail ? `\n${detail}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 50));
  }
}

/**
 * Shell text for a test step that stays in flight until the test lets it go: it waits until `file` exists, and also
 * ends when the file's directory is gone, so a run killed with -9 (or a test that failed before writing the file)
 * leaves no shell polling forever once the test's temp directory is removed. `file` is a plain path (no quoting,
 * no spaces); a bare name is in the step's working directory, checked by its absolute path ($PWD: a removed working
 * directory still answers `[ -d . ]`).
 */
export function shellWaitForFile(file: string, everyS = 0.05): string {
  const slash = file.lastIndexOf('/');
  const dir = slash < 0 ? '$PWD' : slash === 0 ? '/' : file.slice(0, slash);
  return `while [ ! -e ${file} ] && [ -d ${dir} ]; do sleep ${everyS}; done`;
}
