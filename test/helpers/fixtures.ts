/**
 * The loader of fixtures/ (the test inputs shared by several tests, each kept once): playbooks with `@@SLOT@@`
 * places filled per test, journals as JSONL (one record a line), host logs. See fixtures/playbooks/README.md.
 */
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineEvent } from '../../src/engine/events.js';
import type { JournalRecord } from '../../src/journal/records.js';

export const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../fixtures');

/** The text of fixtures/`rel`. */
export function readFixture(rel: string): string {
  return readFileSync(join(FIXTURES, rel), 'utf8');
}

/** Copies the directory fixtures/`rel` (e.g. train: a release train and its apps' playbooks) into `dir`; returns `dir`. */
export function copyFixtureDir(rel: string, dir: string): string {
  cpSync(join(FIXTURES, rel), dir, { recursive: true });
  return dir;
}

/** fixtures/playbooks/`name` with its `@@SLOT@@` places filled; a slot left out (or one the file lacks) is an error. */
export function fixturePlaybook(name: string, slots: Record<string, string>): string {
  const text = readFixture(join('playbooks', name));
  for (const slot of Object.keys(slots)) if (!text.includes(`@@${slot}@@`)) throw new Error(`fixtures/playbooks/${name} has no slot @@${slot}@@`);
  return text.replace(/@@([A-Z0-9_]+)@@/g, (_, slot: string) => {
    const value = slots[slot];
    if (value === undefined) throw new Error(`fixtures/playbooks/${name}: slot @@${slot}@@ not given`);
    return value;
  });
}

/** A journal of fixtures/journals/ (JSONL) as records. */
export function fixtureJournal(name: string): JournalRecord[] {
  return readFixture(join('journals', name))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as JournalRecord);
}

/** What a test holds of an effects-log release (fixtures/playbooks/effects*.yaml) written into `dir`. */
export interface EffectsRelease {
  dir: string;
  file: string;
  /** The request for runRelease/resumeRelease/rollbackRelease…: silent, confirmed, events collected. */
  req: { file: string; yes: true; output: 'silent'; onEvent: (e: EngineEvent) => void };
  events: EngineEvent[];
  /** The lines of effects.log so far, in order (empty before any step ran). */
  effects(): string[];
  /** How often `line` is in effects.log. */
  count(line: string): number;
  /** effects.yaml: make s2 fail on `host` (or stop failing). */
  fail(host: string, on?: boolean): void;
}

/** Writes fixtures/playbooks/`name` (slots filled) to `dir`/pb.yaml. */
export function effectsRelease(dir: string, name: string, slots: Record<string, string>): EffectsRelease {
  const file = join(dir, 'pb.yaml');
  writeFileSync(file, fixturePlaybook(name, slots));
  const events: EngineEvent[] = [];
  const log = join(dir, 'effects.log');
  const effects = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
  return {
    dir,
    file,
    req: { file, yes: true, output: 'silent', onEvent: (e) => events.push(e) },
    events,
    effects,
    count: (line) => effects().filter((l) => l === line).length,
    fail: (host, on = true) => (on ? writeFileSync(join(dir, `fail-${host}`), '') : rmSync(join(dir, `fail-${host}`))),
  };
}
