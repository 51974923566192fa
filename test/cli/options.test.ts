/**
 * One rule for options (issue 16): no subcommand option is shadowed by a program-level one; `--version` / `-V`
 * before any command and `graywave version` print the version; `--version` after a subcommand is that command's own
 * option or a usage error (exit 2) — never the program's version printed, exit 0, with nothing done.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { cli, hostsYaml, requireBuiltCli, ROOT, tempDirs, writePlaybook } from '../helpers/cli.js';

requireBuiltCli();
const temp = tempDirs('gw-opts-');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Every command with its path from the program (`['sandbox', 'up']`). */
function leaves(cmd: Command, path: string[] = []): { cmd: Command; path: string[] }[] {
  if (!cmd.commands.length) return [{ cmd, path }];
  return cmd.commands.flatMap((c) => leaves(c, [...path, c.name()]));
}

describe('program options never shadow a subcommand', () => {
  it('for every command, `… --version X` reaches the command (its own --version) or is an unknown option — never the program version', async () => {
    const program = buildProgram();
    const all = leaves(program).filter((l) => l.path.length && l.path[0] !== 'help');
    expect(all.length).toBeGreaterThan(15);
    for (const { cmd, path } of all) {
      const seen: { version?: unknown } = {};
      let current: Command | undefined = cmd;
      while (current) {
        current.exitOverride().configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
        current = current.parent ?? undefined;
      }
      cmd.action(function (this: Command) {
        seen.version = this.opts().version;
      });
      const args = cmd.registeredArguments.map(() => 'x');
      const required = cmd.options.filter((o) => o.mandatory).flatMap((o) => [o.long!, 'r']);
      const own = cmd.options.some((o) => o.long === '--version');
      let code: string | undefined;
      try {
        await program.parseAsync(['node', 'graywave', ...path, ...args, ...required, '--version', '7.7.7']);
      } catch (err) {
        if (!(err instanceof CommanderError)) throw err;
        code = err.code;
      }
      const where = path.join(' ');
      expect(code, where).not.toBe('commander.version');
      if (own) expect(seen.version, where).toBe('7.7.7');
      else expect(code, where).toBe('commander.unknownOption');
    }
  });
});

describe('--version through the built CLI', () => {
  it('graywave --version, -V and `version` print the package version; `version --json` one object', async () => {
    for (const args of [['--version'], ['-V'], ['version']]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout.trim()).toBe(VERSION);
    }
    expect(JSON.parse((await cli(['version', '--json'])).stdout)).toEqual({ version: VERSION });
  });

  it('`run FILE --version 9.9.9 --yes` is a usage error (exit 2) and releases nothing', async () => {
    const dir = temp();
    const file = writePlaybook(dir, `name: rel\nversion: "1.0"\nhosts:\n${hostsYaml(2)}\nsteps:\n  - name: mark\n    run: "touch ran-{{host.name}}"\n`);
    const r = await cli(['run', file, '--version', '9.9.9', '--yes'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--version'/);
    expect(r.stdout).not.toContain(VERSION);
    expect(existsSync(join(dir, 'ran-h-01'))).toBe(false);
    expect(existsSync(join(dir, '.graywave'))).toBe(false);
  });

  it('`sandbox probe --version V` probes (here: no sandbox, so it fails) instead of printing the version', async () => {
    const dir = temp();
    const r = await cli(['sandbox', 'probe', '--version', '2.0.0', '--count', '1', '--dir', join(dir, 'none')], { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(r.stdout.trim()).not.toBe(VERSION);
  });

  it('--verbose is still accepted after a subcommand; --no-color anywhere', async () => {
    const dir = temp();
    const file = writePlaybook(dir, `name: rel\nversion: "1.0"\nhosts:\n${hostsYaml(1)}\nsteps:\n  - name: mark\n    run: "true"\n`);
    expect((await cli(['validate', file, '--verbose'], { cwd: dir })).code).toBe(0);
    expect((await cli(['--verbose', 'validate', file], { cwd: dir })).code).toBe(0);
    expect((await cli(['plan', file, '--no-color'], { cwd: dir })).code).toBe(0);
    expect((await cli(['--no-color', 'status', file], { cwd: dir })).code).toBe(0);
  });
});

describe('--json on every command that prints a result', () => {
  it('every command takes --json', () => {
    const program = buildProgram();
    const without = leaves(program)
      .filter((l) => l.path.length && l.path[0] !== 'help')
      .filter((l) => !l.cmd.options.some((o) => o.long === '--json'))
      .map((l) => l.path.join(' '));
    expect(without).toEqual([]);
  });
});
