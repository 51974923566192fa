import type { EngineEvent } from '../engine/events.js';
import { formatMs } from '../util/duration.js';
import { KIND_SEVERITY, type NotifyFormat, type NotifyKind, type Severity } from './config.js';

/** The engine event a notification kind comes from (others are never sent). */
export function kindOf(e: EngineEvent): NotifyKind | undefined {
  switch (e.event) {
    case 'run.start':
      return 'started';
    case 'wave.done':
      return 'wave-done';
    case 'run.paused':
      return 'approval-needed';
    case 'run.halted':
      return 'halted';
    case 'run.limited':
      // A --limit run that finished its hosts is not a halt (src/app/limited.ts): its own kind, never `halted`.
      return 'limited';
    case 'rollback.done':
      return 'rolled-back';
    case 'run.done':
      return 'done';
    default:
      return undefined;
  }
}

/** What a message says, as data: the JSON format sends it; the chat formats send `text`. */
export interface Message {
  kind: NotifyKind;
  severity: Severity;
  release: string;
  version: string;
  wave?: number;
  waves?: number;
  hosts: string[];
  failed?: string[];
  reason?: string;
  text: string;
  event: EngineEvent;
}

export interface MessageContext {
  version: string;
  /** Number of waves in the plan. */
  waves: number;
  /** Hosts of a wave (for wave-done / approval-needed / halted). */
  waveHosts(wave: number): string[];
}

const MARK: Record<NotifyKind, string> = {
  started: '▶',
  'wave-done': '✔',
  'approval-needed': '⏸',
  halted: '✖',
  'rolled-back': '↩',
  done: '✅',
  limited: '◐',
};

function list(names: string[], max = 12): string {
  if (names.length <= max) return names.join(', ');
  return `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

/** Builds the message for an event of one of the notification kinds; link-free text that reads well in chat. */
export function buildMessage(e: EngineEvent, ctx: MessageContext): Message | undefined {
  const kind = kindOf(e);
  if (!kind) return undefined;
  const head = `${MARK[kind]} ${e.release} ${ctx.version}`;
  const base = { kind, severity: KIND_SEVERITY[kind], release: e.release, version: ctx.version, waves: ctx.waves, event: e };
  switch (e.event) {
    case 'run.start':
      return { ...base, hosts: [], text: `${head}: release ${e.resumed ? 'resumed' : 'started'}: ${e.hosts} host(s) in ${e.waves} wave(s)` };
    case 'wave.done': {
      const hosts = ctx.waveHosts(e.wave);
      const lines = [`${head}: wave ${e.wave}/${ctx.waves} done in ${formatMs(e.ms)}${e.failed.length ? ` with ${e.failed.length} failed host(s)` : ''}`];
      if (hosts.length) lines.push(`Hosts: ${list(hosts)}`);
      if (e.failed.length) lines.push(`Failed: ${list(e.failed)}`);
      return { ...base, wave: e.wave, hosts, failed: e.failed, text: lines.join('\n') };
    }
    case 'run.paused': {
      const hosts = ctx.waveHosts(e.wave);
      const lines = [`${head}: wave ${e.wave}/${ctx.waves} is done and waits for approval`];
      if (hosts.length) lines.push(`Hosts: ${list(hosts)}`);
      lines.push(`Next: ${e.reason}`);
      return { ...base, wave: e.wave, hosts, reason: e.reason, text: lines.join('\n') };
    }
    case 'run.halted': {
      const hosts = e.wave !== undefined ? ctx.waveHosts(e.wave) : [];
      const lines = [`${head}: HALTED${e.wave !== undefined ? ` at wave ${e.wave}/${ctx.waves}` : ''}`, `Reason: ${e.reason}`];
      if (hosts.length) lines.push(`Hosts: ${list(hosts)}`);
      if (e.stillDrained?.length) lines.push(`Still drained: ${list(e.stillDrained)}`);
      if (e.hint) lines.push(`Next: ${e.hint}`);
      return { ...base, wave: e.wave, hosts, reason: e.reason, text: lines.join('\n') };
    }
    case 'run.limited': {
      const lines = [`${head}: LIMITED: ${e.done} host(s) done, ${e.pending} pending (outside --limit)`, `Reason: ${e.reason}`];
      if (e.hint) lines.push(`Next: ${e.hint}`);
      return { ...base, hosts: [], reason: e.reason, text: lines.join('\n') };
    }
    case 'rollback.done': {
      const lines = [`${head}: rolled back ${e.hosts.length} host(s) in ${formatMs(e.ms)}${e.failed.length ? `; ${e.failed.length} could not be undone` : ''}`];
      if (e.hosts.length) lines.push(`Hosts: ${list(e.hosts)}`);
      if (e.failed.length) lines.push(`Undo failed: ${list(e.failed)}`);
      return { ...base, hosts: e.hosts, failed: e.failed, text: lines.join('\n') };
    }
    case 'run.done':
      return {
        ...base,
        hosts: [],
        failed: e.failed,
        text: `${head}: release done: ${e.hosts} host(s) in ${e.waves} wave(s)${e.ms ? ` in ${formatMs(e.ms)}` : ''}`,
      };
    default:
      return undefined;
  }
}

/** The request body for a webhook format. */
export function bodyFor(format: NotifyFormat, m: Message): object {
  switch (format) {
    case 'slack':
      return { text: m.text };
    case 'feishu':
      return { msg_type: 'text', content: { text: m.text } };
    case 'dingtalk':
      return { msgtype: 'text', text: { content: m.text } };
    case 'json':
      return {
        ...m.event,
        kind: m.kind,
        severity: m.severity,
        release: m.release,
        version: m.version,
        ...(m.wave !== undefined ? { wave: m.wave } : {}),
        hosts: m.hosts,
        ...(m.reason !== undefined ? { reason: m.reason } : {}),
        text: m.text,
      };
  }
}
