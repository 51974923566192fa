import { writeSync } from 'node:fs';

/**
 * Messages that must be seen when they happen (a signal was received), whatever is on the screen. While the live
 * view runs it owns the terminal (it captures process.stdout/stderr and redraws its lines), so it shows them
 * inside the view; otherwise they go to stderr.
 */
let shown: ((text: string) => void) | undefined;

/** The live view takes the notices while it runs; the returned function gives them back. */
export function takeNotices(show: (text: string) => void): () => void {
  shown = show;
  return () => {
    if (shown === show) shown = undefined;
  };
}

export function notice(text: string): void {
  if (shown) return shown(text);
  writeDirect(`\ngraywave: ${text}\n`);
}

/** Straight to fd 2, past any capture of process.stderr (the last words before a forced exit). */
export function writeDirect(text: string): void {
  try {
    if (process.stderr.isTTY) writeSync(2, '\x1b[?25h'); // the live view hides the cursor
    writeSync(2, text);
  } catch {
    /* stderr is gone (a closed pipe): nothing to tell */
  }
}
