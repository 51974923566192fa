import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { EngineEvent } from '../engine/events.js';
import type { JournalRecord } from '../journal/records.js';
import { http } from '../transport/http.js';
import { resolveTls, type TlsSettings } from '../transport/tls.js';
import type { Secrets } from '../util/secrets.js';
import { wants, type NotifySpec } from './config.js';
import { bodyFor, buildMessage, kindOf, type Message, type MessageContext } from './format.js';

/** The part of the journal the notifier uses: the records so far (for keys) and append (to remember what it sent). */
export interface NotifyJournal {
  readonly records: readonly JournalRecord[];
  append(record: JournalRecord): Promise<void>;
}

export interface NotifierOptions {
  specs: NotifySpec[];
  journal: NotifyJournal;
  secrets: Secrets;
  context: MessageContext;
  /** `<release>/logs`: failures are appended to `_notify.log` there. */
  logDir: string;
  /** The playbook's directory: relative `tls:` files are found there. */
  dir: string;
  /** A plain warning line (default: stderr). */
  warn?: (line: string) => void;
}

type RunPhase = Extract<JournalRecord, { type: 'run' }>['phase'];

/**
 * The journal record a transition was written as (the engine emits each event after its record is on disk).
 * Its position and time make a key that is the same whenever the same transition is reported again — e.g.
 * `graywave resume` of a release that is already done re-emits run.done — and new for every new transition.
 */
export function transitionKey(e: EngineEvent, records: readonly JournalRecord[]): string | undefined {
  const kind = kindOf(e);
  if (!kind) return undefined;
  let match: (r: JournalRecord) => boolean;
  const runPhase =
    (...phases: RunPhase[]) =>
    (r: JournalRecord) =>
      r.type === 'run' && phases.includes(r.phase);
  switch (e.event) {
    case 'run.start':
      match = runPhase('start', 'resume');
      break;
    case 'wave.done':
      match = (r) => r.type === 'wave' && r.wave === e.wave && r.phase === 'started';
      break;
    case 'run.paused':
      match = runPhase('paused');
      break;
    case 'run.halted':
      // onFailure: freeze writes `frozen` and reports it as run.halted.
      match = runPhase('halted', 'frozen' as RunPhase);
      break;
    case 'run.limited':
      match = runPhase('limited');
      break;
    case 'rollback.done':
      match = runPhase('rollback');
      break;
    case 'run.done':
      match = runPhase('done');
      break;
    default:
      return undefined;
  }
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i]!;
    if (match(r)) return `${kind}${e.event === 'wave.done' ? `:${e.wave}` : ''}@${r.t}#${i}`;
    // A run-level transition is the newest run record: if that is something else, this one was never recorded
    // (e.g. the journal could not be written): never mistake an older transition for it.
    if (e.event !== 'wave.done' && r.type === 'run') return undefined;
  }
  return undefined;
}

interface Channel {
  spec: NotifySpec;
  resolved?: { url: string; headers: Record<string, string>; tls?: TlsSettings } | { error: string };
  queue: Promise<void>;
}

/**
 * Sends webhook notifications for run transitions. `sink` never blocks and never throws: deliveries run in the
 * background, one after another per channel (so they arrive in order), each with its own timeout. A delivery that
 * fails is written to `logs/_notify.log` and as one warning line; the release goes on. Every attempt is recorded in
 * the journal (`type: notify` with the transition key), so a transition is announced once even across resumes.
 */
export class Notifier {
  private readonly channels: Channel[];
  private readonly claimed = new Set<string>();
  private readonly pending = new Set<Promise<void>>();
  private readonly warn: (line: string) => void;

  constructor(private readonly opts: NotifierOptions) {
    this.channels = opts.specs.map((spec) => ({ spec, queue: Promise.resolve() }));
    this.warn = opts.warn ?? ((line) => process.stderr.write(line + '\n'));
    for (const r of opts.journal.records) if (r.type === 'notify') this.claimed.add(`${r.channel} ${r.key}`);
  }

  /** The event sink: call it with every engine event. */
  readonly sink = (e: EngineEvent): void => {
    try {
      this.accept(e);
    } catch (err) {
      this.fail('*', `internal error: ${(err as Error).message}`);
    }
  };

  private accept(e: EngineEvent): void {
    const kind = kindOf(e);
    if (!kind) return;
    const targets = this.channels.filter((c) => wants(c.spec, kind));
    if (!targets.length) return;
    const key = transitionKey(e, this.opts.journal.records) ?? `${kind}@unrecorded:${new Date().toISOString()}`;
    const message = buildMessage(e, this.opts.context);
    if (!message) return;
    for (const ch of targets) {
      const id = `${ch.spec.name} ${key}`;
      if (this.claimed.has(id)) continue;
      this.claimed.add(id);
      const p = (ch.queue = ch.queue.then(() => this.deliver(ch, key, message)));
      this.pending.add(p);
      void p.finally(() => this.pending.delete(p));
    }
  }

  private resolve(ch: Channel): NonNullable<Channel['resolved']> {
    if (ch.resolved) return ch.resolved;
    const { secrets } = this.opts;
    try {
      const url = typeof ch.spec.url === 'string' ? ch.spec.url : secrets.resolve(ch.spec.url);
      // The URL itself often is the credential (chat webhooks): never show it.
      secrets.add(url);
      secrets.add(url.split('?')[0]!);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(ch.spec.headers)) headers[k] = typeof v === 'string' ? v : secrets.resolve(v);
      ch.resolved = { url, headers, tls: resolveTls(ch.spec.tls, { dir: this.opts.dir, secrets }) };
    } catch (err) {
      ch.resolved = { error: (err as Error).message };
    }
    return ch.resolved;
  }

  private async deliver(ch: Channel, key: string, m: Message): Promise<void> {
    const target = this.resolve(ch);
    let error: string | undefined;
    if ('error' in target) error = target.error;
    else {
      try {
        const res = await http(target.url, {
          method: 'POST',
          body: bodyFor(ch.spec.format, m),
          headers: target.headers,
          timeoutMs: ch.spec.timeoutMs,
          tls: target.tls,
        });
        if (res.status < 200 || res.status >= 300) error = `HTTP ${res.status}${res.text ? `: ${res.text.slice(0, 200).replace(/\s+/g, ' ')}` : ''}`;
        else error = chatError(ch.spec.format, res.text);
      } catch (err) {
        error = (err as Error).message;
      }
    }
    if (error !== undefined) this.fail(ch.spec.name, `${m.kind} not delivered: ${this.opts.secrets.mask(error)}`);
    else this.logLine(`${ch.spec.name}: sent ${m.kind} (${key})`);
    try {
      await this.opts.journal.append({
        type: 'notify',
        t: new Date().toISOString(),
        key,
        channel: ch.spec.name,
        kind: m.kind,
        ok: error === undefined,
        ...(error !== undefined ? { error: this.opts.secrets.mask(error) } : {}),
      });
    } catch {
      /* the journal is closed or broken: the engine reports that; a notification never does */
    }
  }

  private fail(channel: string, text: string): void {
    this.logLine(`${channel}: ${text}`);
    try {
      this.warn(`graywave: warning: notify ${channel}: ${text}`);
    } catch {
      /* never */
    }
  }

  private logLine(text: string): void {
    try {
      mkdirSync(this.opts.logDir, { recursive: true });
      appendFileSync(join(this.opts.logDir, '_notify.log'), `${new Date().toISOString()} ${this.opts.secrets.mask(text)}\n`);
    } catch {
      /* a log that cannot be written must not stop a release */
    }
  }

  /**
   * Waits for deliveries still in flight, at most `maxMs` (default: the longest channel timeout plus a second, so
   * a black-holed endpoint delays the end of a command by one timeout, never more). Call before closing the journal.
   */
  async flush(maxMs?: number): Promise<void> {
    const limit = maxMs ?? Math.max(0, ...this.channels.map((c) => c.spec.timeoutMs)) + 1000;
    const deadline = Date.now() + limit;
    while (this.pending.size && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.pending]), new Promise((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))))]);
      clearTimeout(timer);
    }
    if (this.pending.size) this.fail('*', `${this.pending.size} notification(s) still in flight after ${limit}ms were given up`);
    for (const c of this.channels) if (c.resolved && 'url' in c.resolved) await c.resolved.tls?.close();
  }
}

/** Feishu and DingTalk answer HTTP 200 with an error code in the body. */
function chatError(format: string, text: string): string | undefined {
  if (format !== 'feishu' && format !== 'dingtalk') return undefined;
  try {
    const j = JSON.parse(text) as { code?: number; StatusCode?: number; errcode?: number; msg?: string; errmsg?: string };
    const code = format === 'feishu' ? (j.code ?? j.StatusCode) : j.errcode;
    if (code !== undefined && code !== 0) return `error ${code}: ${j.msg ?? j.errmsg ?? ''}`.trim();
  } catch {
    /* not JSON: a 2xx is success */
  }
  return undefined;
}
