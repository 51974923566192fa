/**
 * A real terminal for the built CLI: each session is a tmux pane (a pseudo-terminal with a screen of its own) on a
 * tmux server of this test file alone (`-L <socket>`), so tests see exactly what a person sees — the live view's
 * redraws, prompts, colours — and press keys (Ctrl-C goes to the pane's foreground process group, as from a
 * keyboard). Waits are on screen conditions, never fixed sleeps.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { BIN } from '../../helpers/cli.js';
import { waitFor as poll } from '../../helpers/wait.js';

const SOCKET = `gw-tty-${process.pid}`;
let sessions = 0;

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** tmux must be installed (scripts/setup-test-env.sh); without it these tests fail rather than pass unseen. */
export function requireTmux(): void {
  if (!existsSync('/usr/bin/tmux') && !existsSync('/usr/local/bin/tmux')) throw new Error('tmux is not installed: run scripts/setup-test-env.sh');
  afterAll(() => {
    try {
      tmux('kill-server'); // this file's own server (its socket), nothing else
    } catch {
      /* already gone */
    }
    rmSync(join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, SOCKET), { force: true });
  });
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export class Terminal {
  private constructor(
    readonly name: string,
    readonly cwd: string,
  ) {}

  /**
   * Starts `graywave ARGS` in a fresh pane of COLS×ROWS. `env` is set for it; NO_COLOR, FORCE_COLOR and CI are
   * unset unless given (a terminal user's environment). When the command ends the pane shows `__EXIT=<code>__`.
   */
  static start(args: string[], opts: { cwd: string; env?: Record<string, string>; cols?: number; rows?: number }): Terminal {
    const name = `s${++sessions}`;
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${quote(v)}`);
    const unset = ['NO_COLOR', 'FORCE_COLOR', 'CI'].filter((k) => !(k in (opts.env ?? {}))).flatMap((k) => ['-u', k]);
    const command = ['env', ...unset, ...env, quote(process.execPath), quote(BIN), ...args.map(quote)].join(' ');
    tmux(
      'new-session',
      '-d',
      '-s',
      name,
      '-x',
      String(opts.cols ?? 160),
      '-y',
      String(opts.rows ?? 50),
      '-c',
      opts.cwd,
      `${command}; echo "__EXIT=$?__"; sleep 3600`,
    );
    tmux('set-option', '-t', name, 'history-limit', '5000');
    // Keep the pane (its screen and the command's exit status) even if its shell is ended by a Ctrl-C too.
    tmux('set-option', '-t', name, 'remain-on-exit', 'on');
    return new Terminal(name, opts.cwd);
  }

  /** The screen and its scrollback as text (wrapped lines joined); with `escapes`, with its colour codes. */
  screen(escapes = false): string {
    return tmux('capture-pane', '-p', '-J', '-S', '-5000', ...(escapes ? ['-e'] : []), '-t', this.name).replace(/\n+$/, '\n');
  }

  /** Waits until the screen matches; returns it. */
  async waitFor(what: RegExp | ((screen: string) => boolean), timeoutMs = 30_000): Promise<string> {
    const test = typeof what === 'function' ? what : (s: string) => what.test(s);
    let last = '';
    return poll(
      () => {
        last = this.screen();
        return test(last) ? last : undefined;
      },
      `the screen to show ${String(what)}`,
      { timeoutMs, detail: () => `it shows:\n${last}` },
    );
  }

  /** Waits for the command to end; its exit code. */
  async exitCode(timeoutMs = 60_000): Promise<number> {
    const s = await this.waitFor((sc) => /__EXIT=\d+__/.test(sc) || this.deadStatus() !== undefined, timeoutMs);
    const m = /__EXIT=(\d+)__/.exec(s);
    return m ? Number(m[1]) : this.deadStatus()!;
  }

  /** The exit status of the pane's shell once it has ended (a Ctrl-C can end the shell with the command). */
  private deadStatus(): number | undefined {
    const [dead, status, signal] = tmux('display-message', '-p', '-t', this.name, '#{pane_dead} #{pane_dead_status} #{pane_dead_signal}').trim().split(' ');
    if (dead !== '1') return undefined;
    // The shell was killed by the same Ctrl-C: the command's own exit is unknown; 128+signal as a shell reports it.
    return status ? Number(status) : 128 + Number(signal || 2);
  }

  /** Keys as tmux names them (`C-c`, `Enter`) or literal text (`literal: true`). */
  keys(keys: string[], literal = false): void {
    tmux('send-keys', '-t', this.name, ...(literal ? ['-l'] : []), ...keys);
  }

  /** The pid of the command in the pane (the shell's child: `env` execs node). */
  pid(): number {
    const shell = tmux('display-message', '-p', '-t', this.name, '#{pane_pid}').trim();
    const child = execFileSync('ps', ['-o', 'pid=', '--ppid', shell], { encoding: 'utf8' }).trim().split('\n')[0]!;
    return Number(child.trim());
  }

  close(): void {
    try {
      tmux('kill-session', '-t', this.name);
    } catch {
      /* already gone */
    }
  }
}

/** `Terminal.start` for one test file: every terminal it starts is closed after the file's tests. */
export function terminalsOfThisFile(): (...a: Parameters<typeof Terminal.start>) => Terminal {
  const terminals: Terminal[] = [];
  afterAll(() => terminals.forEach((t) => t.close()));
  return (...a) => {
    const t = Terminal.start(...a);
    terminals.push(t);
    return t;
  };
}
