import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { quote } from 'shell-quote';
import type { ClientChannel } from 'ssh2';
import type { ExecResult } from './types.js';

/**
 * One long-lived bash per SSH connection that runs the host's commands one after another, so that a step costs a
 * fork on the host (of the program itself, or of `/bin/bash -c` for a script) instead of a new SSH session (sshd
 * session setup, a login shell, then bash):
 * measured ≈5 ms of CPU per command on the host, which on a 2-core machine driving 10 hosts is most of what
 * orchestration costs. Written here because no SSH library offers it (ssh2 gives sessions, not a command loop).
 *
 * Protocol, over the session channel's three streams:
 * - request (stdin): two NUL-terminated fields (bash strings cannot hold NUL, so no escaping): the command's
 *   environment as a bash script of `export` words (may be empty), then the bash script of the command itself.
 *   Apart, so that a command of plain words still runs without a `bash -c` when it has an environment (every step
 *   has: GRAYWAVE_HOST and the rest).
 * - the driver answers with marker lines `\x1e<nonce>:<kind>[:<value>]\n`: `s` (start) on stdout and stderr before
 *   the command runs, `p:<pid>` on stderr once it runs, `e:<status>` on both streams after it ends. The command's
 *   own output lies between a stream's `s` and `e`; both `e`s mean both streams are complete. Flags after the
 *   status: `:exit` when bash's job notice says the command exited (so a status above 128 is an exit status, not a
 *   signal: `$?` cannot tell `exit 143` from a SIGTERM death), `:left` (see below).
 * - each command is a job of its own (`set -m`), so its PID names its process group for a kill, as with a session.
 * - job notifications ("[1]+ Done") go to the driver's own stderr, which is /dev/null, except the one `wait` prints
 *   for the command ("[1]+  Exit 143" or "[1]+  Terminated", in the C locale): it goes into a pipe of the driver's
 *   own (fd 6, both ends; /dev/null where no pipe can be made, then the status alone decides). Commands get the
 *   real stderr and not fd 6.
 * - commands read /dev/null as stdin; a command that needs input goes through an exec channel instead.
 * - the driver keeps the number of the last command it started in a file of its own on the host (startedQuery):
 *   when the connection drops before the client saw a command's start marker, that file tells whether the command
 *   had started (then the step fails: it may still run there) or not (then it may run on a new connection). An empty
 *   command is a quit: the driver removes the file and ends; a plain EOF (a dropped connection) keeps it. The
 *   file's name carries its creation time: a driver starting removes its user's records older than a day (those of
 *   connections that dropped with nobody asking), so they cannot pile up.
 * The nonce makes the markers impossible to forge by accident; a marker may be cut anywhere between chunks.
 */
export const DRIVER = [
  'exec 5>&2 2>/dev/null',
  'exec 6<> <(:) || exec 6<>/dev/null',
  "printf -v now '%(%s)T' -1; o=()",
  `for g in /tmp/.graywave-shell-*-*; do e=\${g#/tmp/.graywave-shell-}; e=\${e%%-*}; case $e in ''|*[!0-9]*) ;; *) [ $((now - e)) -lt 86400 ] || { [ -O "$g" ] && o+=("$g"); };; esac; done`,
  '[ "${#o[@]}" -eq 0 ] || rm -f -- "${o[@]}"',
  // Made new and ours (noclobber opens with O_EXCL: no file or link someone put there first); none if that fails.
  'f=/tmp/.graywave-shell-$now-$1; set -C; { : >"$f"; } || f=; set +C',
  'set -m',
  // The per-step shell: without rc and profile files (bash sources ~/.bashrc for any shell it thinks sshd started,
  // which would cost the host's rc time on every step), or a login shell when the playbook asks for one.
  'sf=(--norc --noprofile); lg=; case $2 in *login*) sf=(--login); lg=1;; esac',
  // sudo with a password: what precedes the first NUL (the password, unless sudo read it) is not a command.
  "case $2 in *pre*) IFS= read -r -d '' _ || :;; esac",
  'n=$1; i=0; q=',
  "while IFS= read -r -d '' e && IFS= read -r -d '' c; do",
  '  [ -n "$c" ] || { q=1; break; }',
  // A record that cannot be written must not tell an older number: it goes (a missing record means "may have started").
  '  i=$((i+1)); [ -z "$f" ] || echo "$i" >"$f" || { rm -f -- "$f"; f=; }',
  `  printf '\\036%s:s\\n' "$n"; printf '\\036%s:s\\n' "$n" >&5`,
  // One external program with plain words (nothing bash would expand, quote, redirect or join: letters, digits,
  // `_./,:=@%+-` and spaces; not a keyword, builtin or function) needs no bash to parse it: the job sets its
  // environment (`export` builtins, in the job's own subshell) and runs it at once, with the environment `bash -c`
  // would give it (bash -c execs a lone command too, SHLVL unchanged). That is one bash start fewer per step (~5 ms
  // of a host's CPU where fork and exec are slow; see bench/README.md). Anything else, every step of a login shell,
  // and every step where BASH_ENV names a file bash would read, gets `bash -c` with the exports in front, as before.
  '  w=; [ -n "$lg$BASH_ENV" ] || case $c in *[!A-Za-z0-9_./,:=@%+\\ -]*) ;; *) w=${c%% *};; esac',
  "  case $w in ''|*=*|-*|if|then|else|elif|fi|case|esac|for|select|while|until|do|done|in|function|time|coproc) w=;;",
  '    */*) [ -f "$w" ] && [ -x "$w" ] || w=;; *) hash -r; hash -- "$w" 2>/dev/null && [ -n "${BASH_CMDS[$w]}" ] || w=;; esac',
  // `( …; $c )`: bash runs a subshell's last simple command without a fork of its own (and sets `_` as for any
  // command, which `exec` would not), so the job is still one process.
  '  if [ -n "$w" ]; then ( eval "$e"; $c ) </dev/null 2>&5 6<&- &',
  '  else /bin/bash "${sf[@]}" -c "$e$c" </dev/null 2>&5 6<&- &',
  '  fi',
  '  p=$!',
  `  printf '\\036%s:p:%s\\n' "$n" "$p" >&5`,
  '  LC_ALL=C wait "$p" 2>&6; r=$?',
  // The notice, then an empty line of our own: the pipe is read up to that line, so it never fills and never blocks.
  `  x=; echo >&6; while IFS= read -r -u 6 t && [ -n "$t" ]; do case $t in *" Exit $r "*) x=:exit;; esac; done`,
  // Something of the command still runs in its process group (`app &`): it may write to these streams later, so
  // this shell takes no more commands (the next one gets a new shell, as a new session would be).
  '  l=; kill -0 -- "-$p" && l=:left',
  `  printf '\\036%s:e:%s%s%s\\n' "$n" "$r" "$x" "$l"; printf '\\036%s:e:%s%s%s\\n' "$n" "$r" "$x" "$l" >&5`,
  '  [ -z "$l" ] || { q=1; break; }',
  'done',
  // The driver's last act: exec, not fork, the removal (a process start is what a host pays most for here).
  '[ -z "$q" ] || [ -z "$f" ] || exec rm -f -- "$f"',
].join('\n');

const KEEP = 64 * 1024; // bytes of output kept per command, as in the other transports; the full output streams to onOutput

// Linux signal numbers to names (hosts are Linux; the numbering is the kernel's).
const SIGNALS = new Map<number, string>();
for (const [name, num] of Object.entries(constants.signals)) if (!SIGNALS.has(num)) SIGNALS.set(num, name); // SIGABRT before its alias SIGIOT

export interface ShellRun {
  /** The command's PID (its process group), once the host has started it. */
  onPid(pid: number): void;
  onOutput?: (chunk: string, stream: 'stdout' | 'stderr') => void;
}

interface Pending {
  run: ShellRun;
  /** The command's number on this shell. */
  seq: number;
  stdout: string;
  stderr: string;
  /** Per stream: has its start marker been seen, and its end marker. */
  started: [boolean, boolean];
  ended: [boolean, boolean];
  status?: number;
  /** bash's job notice said the command exited (rather than died by a signal). */
  exited?: boolean;
  resolve(r: ExecResult): void;
  reject(err: Error): void;
}

/** Splits one stream into output and marker lines; a marker may arrive cut into several chunks. */
class MarkerStream {
  private held = '';
  constructor(
    private readonly token: string,
    private readonly onText: (text: string) => void,
    private readonly onMarker: (body: string) => void,
  ) {}

  push(chunk: string): void {
    let buf = this.held + chunk;
    this.held = '';
    for (;;) {
      const at = buf.indexOf(this.token);
      if (at < 0) break;
      const nl = buf.indexOf('\n', at);
      if (nl < 0) {
        if (at > 0) this.onText(buf.slice(0, at));
        this.held = buf.slice(at);
        return;
      }
      if (at > 0) this.onText(buf.slice(0, at));
      this.onMarker(buf.slice(at + this.token.length, nl));
      buf = buf.slice(nl + 1);
    }
    // Hold back a tail that may be the start of a marker cut by the chunk boundary.
    const last = buf.lastIndexOf('\x1e');
    if (last >= 0 && this.token.startsWith(buf.slice(last))) {
      this.held = buf.slice(last);
      buf = buf.slice(0, last);
    }
    if (buf) this.onText(buf);
  }
}

/**
 * bash's flags for a shell that runs a step: no rc/profile files (the login shell sshd starts has already paid them
 * once for the connection), or `--login` when the playbook asks for the login environment on every step.
 */
export function stepShellFlags(loginShell: boolean): string {
  return loginShell ? '--login' : '--norc --noprofile';
}

/**
 * The exec request that starts a driver; `nonce` comes back in its markers. `sudo` is the command prefix that
 * runs it as root (empty: none).
 */
export function driverCommand(nonce: string, sudo: string, flags: { login?: boolean; preamble?: boolean } = {}): string {
  const f = [flags.login ? 'login' : '', flags.preamble ? 'pre' : ''].filter(Boolean).join(',') || '-';
  return `exec ${sudo}/bin/bash --norc --noprofile -c ${quote([DRIVER])} graywave-shell ${nonce} ${f}`;
}

export function newNonce(): string {
  return randomBytes(9).toString('hex');
}

/**
 * A command that prints `n=<number of the last command the shell with this nonce started>` and removes the
 * driver's record; `n=none` when there is no record (run it with the driver's own sudo mode).
 */
export function startedQuery(nonce: string): string {
  if (!/^[0-9a-f]+$/.test(nonce)) throw new Error(`not a shell nonce: ${nonce}`);
  return (
    `i=; for f in /tmp/.graywave-shell-*-${nonce}; do if [ -f "$f" ] && [ ! -L "$f" ] && [ -O "$f" ]; then ` +
    `IFS= read -r i <"$f"; rm -f -- "$f"; fi; done; echo "n=\${i:-none}"`
  );
}

/**
 * Why a command did not get a status. `started`: its start marker was seen (it ran, or runs). `sent`: it went out at
 * all (false: the shell had ended before, so it never ran). `seq`: its number on this shell (see startedQuery).
 */
export class ShellEnded extends Error {
  constructor(
    readonly started: boolean,
    readonly sent = true,
    readonly seq = 0,
  ) {
    super('the remote shell ended');
  }
}

export class RemoteShell {
  private pending?: Pending;
  private claimed = false;
  private closedFlag = false;
  /** Takes no more commands: the driver exits, or a command left processes behind. */
  private retired = false;
  /** Commands written to the driver so far (the driver counts them the same way). */
  private sent = 0;

  /** `log` gets output that arrives outside any command (a background process left by an earlier one). */
  constructor(
    private readonly ch: ClientChannel,
    readonly nonce: string,
    private readonly log?: (line: string) => void,
  ) {
    const token = `\x1e${this.nonce}:`;
    const streams = [
      new MarkerStream(
        token,
        (t) => this.text(0, t),
        (m) => this.marker(0, m),
      ),
      new MarkerStream(
        token,
        (t) => this.text(1, t),
        (m) => this.marker(1, m),
      ),
    ];
    ch.setEncoding('utf8');
    ch.stderr.setEncoding('utf8');
    ch.on('data', (c: string) => streams[0]!.push(c));
    ch.stderr.on('data', (c: string) => streams[1]!.push(c));
    ch.on('close', () => {
      this.closedFlag = true;
      const p = this.pending;
      this.pending = undefined;
      this.claimed = false;
      p?.reject(new ShellEnded(p.started[0] || p.started[1], true, p.seq));
    });
  }

  /** Ended, or will take no more commands. */
  get closed(): boolean {
    return this.closedFlag || this.retired;
  }

  /** Reserves the shell for one run() (synchronously, so that concurrent callers cannot both get it). */
  tryClaim(): boolean {
    if (this.closed || this.claimed) return false;
    this.claimed = true;
    return true;
  }

  /**
   * Runs one bash script after tryClaim(), with `env` (a bash script of `export` words, or '') exported to it;
   * resolves with its status and output, rejects when the shell ends first.
   */
  run(script: string, run: ShellRun, env = ''): Promise<ExecResult> {
    if (this.closedFlag) return Promise.reject(new ShellEnded(false, false));
    if (!this.claimed || this.pending) return Promise.reject(new Error('the remote shell is not reserved for this command'));
    if (script.includes('\0') || env.includes('\0')) {
      this.claimed = false;
      return Promise.reject(new Error('a command cannot contain a NUL byte'));
    }
    return new Promise<ExecResult>((resolve, reject) => {
      const seq = ++this.sent;
      this.pending = { run, seq, stdout: '', stderr: '', started: [false, false], ended: [false, false], resolve, reject };
      this.ch.write(`${env}\0${script === '' ? ':' : script}\0`); // an empty command means quit
    });
  }

  /**
   * Ends the shell: a quit request (the driver removes its record and exits), then EOF. Resolves when the driver is
   * gone, or after `waitMs` (0: at once), so that the connection is not closed under the quit.
   */
  end(waitMs = 0): Promise<void> {
    if (this.closedFlag) return Promise.resolve();
    this.ch.write('\0\0');
    this.ch.end();
    if (waitMs <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, waitMs);
      this.ch.once('close', () => (clearTimeout(t), resolve()));
    });
  }

  /** Closes the channel at once (a command that would not die). */
  close(): void {
    this.ch.close();
  }

  private text(stream: 0 | 1, text: string): void {
    const p = this.pending;
    if (!p || !p.started[stream] || p.ended[stream]) {
      this.log?.(`output outside any command (a background process of an earlier step?): ${text.trimEnd().slice(0, 200)}`);
      return;
    }
    if (stream === 0) p.stdout = (p.stdout + text).slice(-KEEP);
    else p.stderr = (p.stderr + text).slice(-KEEP);
    p.run.onOutput?.(text, stream === 0 ? 'stdout' : 'stderr');
  }

  private marker(stream: 0 | 1, body: string): void {
    const p = this.pending;
    if (!p) return;
    const [kind, value, ...flags] = body.split(':');
    if (kind === 's') p.started[stream] = true;
    else if (kind === 'p') {
      const pid = Number(value);
      if (pid > 0) p.run.onPid(pid);
    } else if (kind === 'e') {
      p.ended[stream] = true;
      p.status = Number(value);
      p.exited = flags.includes('exit');
      if (flags.includes('left')) this.retired = true;
      if (p.ended[0] && p.ended[1]) {
        this.pending = undefined;
        this.claimed = false;
        if (this.retired) this.log?.(`the command left processes running that share its output: its shell takes no more commands`);
        p.resolve(toResult(p.status, p.exited === true, p.stdout, p.stderr));
      }
    }
  }
}

/**
 * bash's `wait` gives 128+N both for a job killed by signal N and for one that chose to exit with 128+N. The job
 * notice tells them apart (`exited`); without it (no notice read) a status above 128 that names a signal is
 * reported as that signal — as `$?` means it.
 */
function toResult(status: number, exited: boolean, stdout: string, stderr: string): ExecResult {
  const sig = status > 128 && !exited ? SIGNALS.get(status - 128) : undefined;
  if (sig) return { code: null, signal: sig, timedOut: false, stdout, stderr };
  return { code: status, timedOut: false, stdout, stderr };
}
