import chalk from 'chalk';
import type { EngineEvent } from '../engine/events.js';
import { formatMs } from '../util/duration.js';
import { evidenceLines, type JudgeEvidence } from '../gates/judge.js';

/** One JSON object per line: `{"event":"step.done","release":…,"ts":…}`. For scripts and CI parsers. */
export function jsonRenderer(write: (line: string) => void = (l) => process.stdout.write(l)) {
  return (e: EngineEvent) => write(JSON.stringify({ ...e, ts: new Date().toISOString() }) + '\n');
}

/** Human text for one event, or undefined for events too chatty for plain logs. */
export function describeEvent(e: EngineEvent): string | undefined {
  switch (e.event) {
    case 'run.start':
      return `${e.resumed ? 'resume' : 'run'} ${e.release} ${e.version}: ${e.hosts} hosts in ${e.waves} waves`;
    case 'wave.start':
      return `wave ${e.wave} start: ${e.hosts.join(', ')}`;
    case 'app.waiting':
      return `wave ${e.wave} ${e.app} waiting for ${e.after.join(', ')}`;
    case 'host.start':
      return undefined;
    case 'step.start':
      return `wave ${e.wave} ${e.host} ${e.step} …${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`;
    case 'step.progress':
      return `wave ${e.wave} ${e.host} ${e.step}: ${e.observed}`;
    case 'step.done':
      return `wave ${e.wave} ${e.host} ${e.step} done (${formatMs(e.ms)})`;
    case 'step.retry':
      return `wave ${e.wave} ${e.host} ${e.step} attempt ${e.attempt} failed, retrying: ${e.error}`;
    case 'step.failed':
      return `wave ${e.wave} ${e.host} ${e.step} FAILED after ${formatMs(e.ms)}: ${e.error}${e.output?.length ? '\n' + e.output.map((l) => `    | ${l}`).join('\n') : ''}`;
    case 'host.done':
      return `wave ${e.wave} ${e.host} done (${formatMs(e.ms)})`;
    case 'host.failed':
      return `wave ${e.wave} ${e.host} failed at ${e.step}`;
    case 'verify.start':
      return undefined;
    case 'verify.done':
      return `wave ${e.wave} verify ${e.check}${e.host ? ` on ${e.host}` : ''}: ok (${e.observed})${evidenceText(e.evidence)}`;
    case 'verify.failed':
      return `wave ${e.wave} verify ${e.check}${e.host ? ` on ${e.host}` : ''}: ${e.verdict && e.verdict !== 'fail' ? e.verdict.toUpperCase() : 'FAILED'}: ${e.observed}${evidenceText(e.evidence)}`;
    case 'wave.done':
      return `wave ${e.wave} done in ${formatMs(e.ms)}${e.failed.length ? ` (failed: ${e.failed.join(', ')})` : ''}`;
    case 'wave.paused':
      return `wave ${e.wave} paused: ${e.reason}${e.until ? ` until ${e.until}` : ''}`;
    case 'wave.approved':
      return `wave ${e.wave} approved by ${e.by}`;
    case 'switchover.start':
      return `switchover: GREEN carries ${e.greenPercent}% after wave ${e.afterWave}`;
    case 'switchover.done':
      return `switchover done (${formatMs(e.ms)})`;
    case 'routing.applied':
      return `routing ${e.rule} ${routingPoint(e.phase, e.wave)}: ${e.detail} (read back: ${e.observed})`;
    case 'routing.failed':
      return `routing ${e.rule} ${e.phase === 'undo' ? `undo of its change from wave ${e.wave}` : routingPoint(e.phase, e.wave)} FAILED: ${e.error}`;
    case 'routing.undone':
      return `routing ${e.rule}: undid ${e.detail}`;
    case 'rollback.start':
      return `rollback of wave(s) ${e.waves.join(', ')}: ${e.hosts.join(', ') || 'no hosts touched'}`;
    case 'undo.start':
      return undefined;
    case 'host.undone':
      return undefined;
    case 'undo.done':
      return `undo ${e.host} ${e.step} done (${formatMs(e.ms)})`;
    case 'undo.skipped':
      return `undo ${e.host} ${e.step} skipped: ${e.reason}`;
    case 'undo.failed':
      return `undo ${e.host} ${e.step} FAILED: ${e.error}`;
    case 'rollback.done':
      return `rollback done in ${formatMs(e.ms)}${e.failed.length ? `; failed: ${e.failed.join(', ')}` : ''}`;
    case 'run.limited':
      return `LIMITED: ${e.reason.replace(/^--limit: /, '')}${e.hint ? `\n  next: ${e.hint}` : ''}`;
    case 'run.halted':
      return `HALTED: ${e.reason}${e.stillDrained?.length ? `\n  still drained: ${e.stillDrained.join(', ')}` : ''}${e.hint ? `\n  next: ${e.hint}` : ''}`;
    case 'run.paused':
      return `PAUSED: ${e.reason}`;
    case 'run.done':
      return `done: ${e.release} ${e.version} on ${e.hosts} hosts in ${e.waves} waves (${formatMs(e.ms)})`;
  }
}

/** A judge's evidence under its verify line: one indented line per metric (src/gates/judge.ts evidenceLines). */
function evidenceText(e: JudgeEvidence | undefined): string {
  return e
    ? '\n' +
        evidenceLines(e)
          .slice(1)
          .map((l) => `    ${l}`)
          .join('\n')
    : '';
}

/** Where in the release a routing point is: "before wave 1", "after wave 2", "at the end". */
export function routingPoint(phase: string, wave: number): string {
  return phase === 'publish' ? 'before wave 1' : phase === 'final' ? 'at the end' : `after wave ${wave}`;
}

/** Timestamped lines for CI logs and other non-terminals. Progress is rate-limited per step. */
export function plainRenderer(write: (line: string) => void = (l) => process.stdout.write(l)) {
  const lastProgress = new Map<string, number>();
  return (e: EngineEvent) => {
    if (e.event === 'step.progress') {
      const key = `${e.host}/${e.step}`;
      const t = Date.now();
      if (t - (lastProgress.get(key) ?? 0) < 5000) return;
      lastProgress.set(key, t);
    }
    const text = describeEvent(e);
    if (text === undefined) return;
    const bad = e.event === 'run.halted' || e.event.endsWith('failed');
    const line = `${new Date().toISOString()} ${text}`;
    write((bad && chalk.level > 0 ? chalk.red(line) : line) + '\n');
  };
}
