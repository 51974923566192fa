import { Command, Option } from 'commander';
import chalk from 'chalk';
import {
  approveRelease,
  withHotfix,
  resumeRelease,
  rollbackRelease,
  runRelease,
  unlockRelease,
  controlRelease,
  waitForRelease,
  type OutputMode,
  type ReleaseRequest,
} from '../app/run.js';
import { parseDuration } from '../util/duration.js';
import { releaseStatus } from '../app/status.js';
import { ConfigError, EXIT, GraywaveError } from '../errors.js';
import { buildPlan } from '../plan/build.js';
import { openReleaseFile } from '../playbook/release-file.js';
import type { Train } from '../playbook/train.js';
import { buildTrainPlan } from '../plan/train.js';
import { trainPlanJson, trainPlanMarkdown, trainPlanText } from '../render/train-plan.js';
import { planJson, planMarkdown, planText, statusText } from '../render/plan.js';
import { extraCommands } from './extra.js';
import { renderFailure } from './failure.js';
import { interruptSignal } from './signals.js';
import { VERSION } from '../version.js';
import { resolveLimit } from '../plan/limit.js';
import { setOverrides } from '../playbook/overrides.js';
import { limitOption, stateDirOption } from './options.js';

/** Thrown by actions to end with a given exit code; only main() calls process.exit. */
class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

let verbose = false;

function outputOf(opts: { json?: boolean; plain?: boolean }): OutputMode {
  return opts.json ? 'json' : opts.plain ? 'plain' : 'auto';
}

/** What `run`, `resume` and `rollback` take alike from their options (the `changing` ones, `--reason`, `--limit`) and Ctrl-C. */
function changeRequest(file: string, opts: ChangeOptions): ReleaseRequest {
  return {
    file,
    yes: opts.yes,
    output: outputOf(opts),
    force: opts.force,
    stateDir: opts.stateDir,
    reason: opts.reason,
    limit: opts.limit,
    signal: interruptSignal(),
  };
}

interface ChangeOptions {
  yes?: boolean;
  json?: boolean;
  plain?: boolean;
  force?: boolean;
  stateDir?: string;
  reason?: string;
  limit?: string;
}

/** A command's result: one JSON object with --json, else the text. */
function print(json: boolean | undefined, value: unknown, text: string): void {
  process.stdout.write(json ? JSON.stringify(value) + '\n' : text + '\n');
}

/**
 * Colours: settled by ./color-env.ts before anything loads (`--no-color` off; FORCE_COLOR forces; NO_COLOR, any
 * value, off). Here: chalk agrees for in-process callers too, and the colour flags, which every command accepts, are
 * taken off the command line.
 */
export function applyColor(argv: string[]): string[] {
  const forced = process.env.FORCE_COLOR === undefined ? undefined : !/^(0|false)$/i.test(process.env.FORCE_COLOR);
  if (argv.includes('--no-color') || forced === false || (forced === undefined && process.env.NO_COLOR !== undefined)) chalk.level = 0;
  return argv.filter((a, i) => i < 2 || (a !== '--no-color' && a !== '--color'));
}

interface PlanOptions {
  json?: boolean;
  markdown?: boolean;
  hotfix?: boolean;
  reason?: string;
  limit?: string;
}

/** `plan` (and `run --dry-run`): the dry run; contacts nothing. */
function printPlan(file: string, opts: PlanOptions): void {
  const rf = openReleaseFile(file);
  if (rf.kind === 'train') return printTrainPlan(rf.load, opts);
  const loaded = rf.load();
  const pb = opts.hotfix ? withHotfix(loaded, opts.reason) : loaded;
  const plan = buildPlan(pb);
  const limited = opts.limit ? resolveLimit(pb.hosts, opts.limit) : undefined;
  // Hotfix policy, label waves and routing rules (src/plan/labels.ts, src/routing) ride along with the plan.
  const extra = {
    hotfix: pb.hotfix ? { reason: pb.hotfix.reason, skippedGates: pb.verify.filter((g) => g.skipOnHotfix).map((g) => g.name) } : null,
    wavesBy: pb.waves.by ? { label: pb.waves.by, order: pb.waves.order ?? null, maxPerZone: pb.waves.maxPerZone ?? null } : null,
    routing: (pb.routing ?? []).map((r) => ({ name: r.name, type: r.type, end: r.end })),
    ...(limited ? { limit: [...limited] } : {}),
  };
  const note = limited ? `--limit: only ${[...limited].join(', ')} (${limited.size} of ${pb.hosts.length} hosts) would run; the rest stays pending\n` : '';
  if (opts.json) process.stdout.write(JSON.stringify({ ...planJson(pb, plan), ...extra }) + '\n');
  else if (opts.markdown) process.stdout.write((note ? `> ${note}\n` : '') + planMarkdown(pb, plan) + '\n');
  else process.stdout.write(note + planText(pb, plan) + '\n');
}

/** `plan` of a release train (src/render/train-plan.ts). */
function printTrainPlan(load: () => Train, opts: PlanOptions): void {
  if (opts.hotfix || opts.limit) throw new GraywaveError(`${opts.hotfix ? '--hotfix' : '--limit'} is not available for a release train`, EXIT.usage);
  const tp = buildTrainPlan(load());
  if (opts.json) process.stdout.write(JSON.stringify(trainPlanJson(tp)) + '\n');
  else process.stdout.write((opts.markdown ? trainPlanMarkdown(tp) : trainPlanText(tp)) + '\n');
}

const SET_FLAGS = '--set <key=value>';
const SET_HELP = 'override a top-level value of the playbook, e.g. --set version=2.4.1 (repeatable)';
const collectSet = (v: string, prev: string[] = []) => [...prev, v];

export function buildProgram(): Command {
  const program = new Command('graywave')
    .description(
      'Gray (canary, blue/green) releases on host fleets: drain, wait for zero traffic, deploy, relabel GREEN, restore — in waves, with a crash-safe journal.',
    )
    .version(VERSION, '-V, --version', 'print the version')
    .option('--verbose', 'show stack traces for unexpected errors')
    .addHelpText('after', '\nEvery command also takes --verbose and --no-color (NO_COLOR=1 does the same; FORCE_COLOR=1 forces colours).')
    // Program options only before the subcommand: `run FILE --version 9.9.9` is an unknown option of `run` (exit 2),
    // never the program's version printed with nothing released. (--set is also an option of every command: see the end.)
    .option(SET_FLAGS, SET_HELP, collectSet)
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride();
  program.hook('preAction', (_cmd, action) => {
    verbose = !!program.opts().verbose || !!action.opts().verbose;
    // --set KEY=VALUE applies to every playbook this command loads (before or after the command name).
    setOverrides([...((program.opts().set as string[] | undefined) ?? []), ...((action.opts().set as string[] | undefined) ?? [])]);
  });
  addCheckCommands(program);
  addReleaseCommands(program);
  addControlCommands(program);
  for (const cmd of extraCommands()) program.addCommand(cmd);
  acceptEverywhere(program);
  return program;
}

/** The commands that only read the playbook: `validate` and `plan`. */
function addCheckCommands(program: Command): void {
  program
    .command('validate')
    .description('check a playbook; exit 2 with FILE:LINE:COL per problem')
    .argument('<files...>', 'playbook(s)')
    .option('--json', 'one JSON object: {"ok":…,"files":[{"file","ok","problems":[{"file","line","col","message"}]}]}')
    .action((files: string[], opts: { json?: boolean }) => {
      const issues: string[] = [];
      const results: { file: string; ok: boolean; problems: ConfigError['issues'] }[] = [];
      for (const f of files) {
        try {
          openReleaseFile(f).load();
          results.push({ file: f, ok: true, problems: [] });
          if (!opts.json) process.stdout.write(`${f}: ok\n`);
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          issues.push(err.message);
          results.push({ file: f, ok: false, problems: err.issues });
        }
      }
      if (opts.json) process.stdout.write(JSON.stringify({ ok: issues.length === 0, files: results }) + '\n');
      if (issues.length) {
        if (!opts.json) process.stderr.write(issues.join('\n') + '\n');
        throw new Exit(EXIT.usage);
      }
    });

  program
    .command('plan')
    .description('dry run: print the waves, hosts and each step’s resolved command; contacts nothing')
    .argument('<file>')
    .option('--json', 'one JSON object')
    .option('--markdown', 'markdown for a pull-request comment')
    .option('--hotfix', 'plan the hotfix policy (a canary, then one wave; skipOnHotfix gates skipped); needs --reason')
    .option('--reason <text>', 'why (the hotfix reason)')
    .addOption(limitOption())
    .action((file: string, opts: PlanOptions) => printPlan(file, opts));
}

/** The commands that change hosts: `run`, `resume`, `rollback`. */
function addReleaseCommands(program: Command): void {
  const changing = (cmd: Command) =>
    cmd
      .argument('<file>')
      .option('-y, --yes', 'do not ask for confirmation')
      .option('--json', 'JSON events, one per line')
      .option('--plain', 'plain timestamped lines even in a terminal')
      .option('--force', 'accept a journal written for a different plan')
      .addOption(stateDirOption());

  changing(program.command('run').description('run the release'))
    .option('--skip-preflight', 'start without the preflight (graywave check)')
    .option('--reason <text>', 'why (shown to anyone the lock refuses; with --hotfix, recorded as the hotfix reason)')
    .option('--hotfix', 'the hotfix policy: a canary, then one wave; gates marked skipOnHotfix are skipped (needs --reason)')
    .option('--dry-run', 'print the plan and change nothing (the same as graywave plan)')
    .option('--again', 'run a release whose journal says done once more')
    .addOption(limitOption())
    .action(async (file: string, opts) => {
      if (opts.dryRun) return printPlan(file, { json: opts.json, hotfix: opts.hotfix, reason: opts.reason, limit: opts.limit });
      throw new Exit(await runRelease({ ...changeRequest(file, opts), hotfix: opts.hotfix, again: opts.again, preflight: !opts.skipPreflight }));
    });
  changing(program.command('resume').description('continue a halted or paused release from the exact step where each host stopped'))
    .option('--skip-preflight', 'continue without the preflight of the hosts not started yet')
    .option('--reason <text>', 'why (recorded in the journal)')
    .addOption(limitOption())
    .action(async (file: string, opts) => {
      throw new Exit(await resumeRelease({ ...changeRequest(file, opts), preflight: !opts.skipPreflight }));
    });
  changing(program.command('rollback').description('undo the completed steps of the current wave (--all: every wave, newest first)'))
    .option('--all', 'every wave, newest first')
    .option('--fast', 'every touched host at once, without canary pacing (gates skipped, drains honoured)')
    .option('--reason <text>', 'why (recorded in the journal)')
    .addOption(limitOption())
    .action(async (file: string, opts) => {
      throw new Exit(await rollbackRelease({ ...changeRequest(file, opts), all: opts.all, fast: opts.fast }));
    });
}

/** The commands about a release under way: `approve`, `status`, `abort`, `promote`, `unlock`; and `version`. */
function addControlCommands(program: Command): void {
  const stateDir = stateDirOption();
  program
    .command('approve')
    .description('approve the wave that waits (pause: approve); then `graywave resume`')
    .argument('<file>')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--reason <text>', 'why (recorded in the journal)')
    .option('--json', 'one JSON object: {"approved","wave","next"}')
    .addOption(stateDir)
    .action(async (file: string, opts) => {
      const r = await approveRelease({ file, yes: opts.yes, stateDir: opts.stateDir, reason: opts.reason });
      // A train's app whose check paused it (a marginal judge): that check is approved; resume runs it again and lets it pass.
      const what = r.apps?.length
        ? `${r.apps.map((p) => `app ${p.app}'s check of wave ${p.wave} (${p.detail})`).join('; ')} may pass`
        : `wave ${(r.wave ?? 0) + 1} may start`;
      if (r.wave !== undefined)
        print(
          opts.json,
          { approved: true, wave: r.wave, next: r.wave + 1, ...(r.apps?.length ? { apps: r.apps } : {}), resume: `graywave resume ${file}` },
          `approved: ${what} (graywave resume ${file})`,
        );
      else if (opts.json) print(true, { approved: false }, '');
      throw new Exit(r.code);
    });
  program
    .command('status')
    .description('per wave and host: which step it is at, done/failed/rolled back, with times')
    .argument('<file>')
    .option('--json', 'one JSON object')
    .option('--wait', 'block until the release is done or limited (exit 0), halted (1) or paused for approval (4)')
    .option('--timeout <duration>', 'with --wait: give up after this long (exit 5)', '30m')
    .addOption(stateDir)
    .action(async (file: string, opts) => {
      if (opts.wait) {
        const timeoutMs = parseDuration(opts.timeout);
        if (timeoutMs === undefined) throw new GraywaveError(`--timeout ${opts.timeout} is not a duration (e.g. 90s, 30m)`, EXIT.usage);
        const code = await waitForRelease({ file, stateDir: opts.stateDir, timeoutMs });
        const r = await releaseStatus(file, opts.stateDir);
        process.stdout.write(opts.json ? JSON.stringify(r) + '\n' : statusText(r) + '\n');
        throw new Exit(code);
      }
      const r = await releaseStatus(file, opts.stateDir);
      process.stdout.write(opts.json ? JSON.stringify(r) + '\n' : statusText(r) + '\n');
    });
  program
    .command('abort')
    .description('stop a running release at the next step boundary (from another terminal or CI job)')
    .argument('<file>')
    .requiredOption('--reason <text>', 'why (recorded in the journal)')
    .option('--json', 'one JSON object: {"action","message"}')
    .addOption(stateDir)
    .action(async (file: string, opts) => {
      const r = await controlRelease({ file, stateDir: opts.stateDir, reason: opts.reason, action: 'abort' });
      print(opts.json, { action: 'abort', message: r.message }, r.message);
      throw new Exit(r.code);
    });
  program
    .command('promote')
    .description('pass the current gate (or, with --full, every remaining gate, approval and pause), with a recorded reason')
    .argument('<file>')
    .option('--skip-gate', 'pass the current gate (default)')
    .option('--full', 'pass every remaining gate, approval and pause')
    .option('--reason <text>', 'why (recorded in the journal)')
    .option('--json', 'one JSON object: {"action","mode","message"}')
    .addOption(stateDir)
    .action(async (file: string, opts) => {
      const r = await controlRelease({ file, stateDir: opts.stateDir, reason: opts.reason, action: 'promote', mode: opts.full ? 'full' : 'gate' });
      print(opts.json, { action: 'promote', mode: opts.full ? 'full' : 'gate', message: r.message }, r.message);
      throw new Exit(r.code);
    });
  program
    .command('unlock')
    .description('clear a stale lock (refuses while its holder is alive)')
    .argument('<file>')
    .option('--force', 'required: says you checked nothing else releases it')
    .option('--reason <text>', 'why (recorded in the journal)')
    .option('--json', 'one JSON object: {"removed": <the lock> | null}')
    .addOption(stateDir)
    .action(async (file: string, opts) => {
      if (!opts.force) throw new GraywaveError('unlock needs --force', EXIT.usage, `graywave unlock ${file} --force`);
      const holder = await unlockRelease({ file, stateDir: opts.stateDir, reason: opts.reason });
      print(
        opts.json,
        { removed: holder ?? null },
        holder ? `removed the lock of pid ${holder.pid} on ${holder.host} (${holder.user}, ${holder.command} since ${holder.startedAt})` : 'no lock',
      );
    });
  program
    .command('version')
    .description('print the version')
    .option('--json', 'one JSON object: {"version"}')
    .action((opts: { json?: boolean }) => print(opts.json, { version: VERSION }, VERSION));
}

/** Options every command takes, also after the command name: `--verbose` and `--set`. */
function acceptEverywhere(program: Command): void {
  // `--verbose` is the program's, but is also accepted after any subcommand (program options are positional).
  const addVerbose = (cmd: Command) => {
    for (const sub of cmd.commands) {
      if (!sub.options.some((o) => o.long === '--verbose')) sub.addOption(new Option('--verbose').hideHelp());
      addVerbose(sub);
    }
  };
  addVerbose(program);
  // --set after the command name too (`graywave run pb.yaml --set version=2.4.1`): every command takes it.
  for (const cmd of program.commands) if (!cmd.options.some((o) => o.long === '--set')) cmd.option(SET_FLAGS, SET_HELP, collectSet);
}

/** The edge: runs the program, renders errors once, and is the only place that exits. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(applyColor(argv));
    return EXIT.ok;
  } catch (err) {
    if (err instanceof Exit) return err.code;
    return renderFailure(err, verbose);
  }
}
