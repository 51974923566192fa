import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Host } from '../../../src/playbook/types.js';
import { isKnownTemplateName, render, renderShell, templateEnv, templateNames, usesHost, type TemplateValues } from '../../../src/util/template.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-tmpl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function bash(command: string, env: Record<string, string> = {}): { out: string; code: number | null } {
  const r = spawnSync('/bin/bash', ['-c', command], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH!, ...env } });
  return { out: r.stdout, code: r.status };
}

const host = (vars: Record<string, unknown> = {}, name = 'app-01'): Host => ({ name, address: '10.0.0.1', port: 2222, vars, labels: { zone: 'eu-1' } });
const values = (vars: Record<string, unknown> = {}, extra: Partial<TemplateValues> = {}): TemplateValues => ({
  release: 'shop',
  version: '2.4.1',
  group: 'GREEN',
  wave: 3,
  host: host(vars),
  ...extra,
});

/** Values that would run a command, split words or expand, if they reached the shell unquoted. */
const HOSTILE = [
  '$(touch pwned)',
  '`touch pwned`',
  '"; touch pwned; "',
  "'; touch pwned; '",
  'a\ntouch pwned',
  'x\r\ntouch pwned',
  '$HOME ${IFS} $((1+1))',
  '\\',
  '\\\\\'\\"',
  '* ? [a] {a,b} ~root',
  '!! !$',
  ' leading and trailing ',
  '',
  '--help',
  "it's",
  '\t',
  '; touch pwned',
  '&& touch pwned',
  '| touch pwned',
  '> pwned',
  '<(touch pwned)',
  '# not a comment',
  'é ünï $(touch pwned) \'"`',
  ')',
  "')",
  '"`)',
];

/** Ways an author may write a template into a command; `out` is what printf should print for value v. */
const CONTEXTS: { name: string; template: string; out: (v: string) => string; multiline?: boolean }[] = [
  { name: 'bare', template: "printf '%s' {{host.vars.x}}", out: (v) => v },
  { name: 'double quotes', template: 'printf \'%s\' "{{host.vars.x}}"', out: (v) => v },
  { name: 'single quotes', template: "printf '%s' '{{host.vars.x}}'", out: (v) => v },
  { name: 'inside a double-quoted word', template: 'printf \'%s\' "pre-{{host.vars.x}}-post"', out: (v) => `pre-${v}-post` },
  { name: 'inside a single-quoted word', template: "printf '%s' 'pre-{{host.vars.x}}-post'", out: (v) => `pre-${v}-post` },
  { name: 'glued to a bare word', template: "printf '%s' pre{{host.vars.x}}post", out: (v) => `pre${v}post` },
  { name: '$( ) in double quotes', template: "printf '%s' \"$(printf '%s' {{host.vars.x}})\"", out: (v) => v.replace(/\n+$/, '') },
  { name: 'quoted inside $( )', template: 'printf \'%s\' "$(printf \'%s\' "{{host.vars.x}}")"', out: (v) => v.replace(/\n+$/, '') },
  { name: 'backticks', template: "printf '%s' \"`printf '%s' {{host.vars.x}}`\"", out: (v) => v.replace(/\n+$/, '') },
  { name: "ANSI-C $'…'", template: "printf '%s' $'{{host.vars.x}}'", out: (v) => v },
  { name: 'subshell', template: "(printf '%s' {{host.vars.x}})", out: (v) => v },
  { name: 'after a comment with a quote', template: "printf '%s' {{host.vars.x}} # it's fine\n", out: (v) => v },
  { name: 'unquoted here-document', template: 'cat <<EOF\n{{host.vars.x}}\nEOF', out: (v) => `${v}\n`, multiline: false },
  { name: 'quoted here-document', template: "cat <<'EOF'\n{{host.vars.x}}\nEOF", out: (v) => `${v}\n`, multiline: false },
];

describe('renderShell: hostile values arrive literally, in every quoting context', () => {
  for (const ctx of CONTEXTS) {
    it(ctx.name, () => {
      // One bash per context (spawning is slow on busy CI): each rendered command's output ends with a NUL.
      const cases: { v: string; command: string }[] = [];
      for (const v of HOSTILE) {
        const vals = values({ x: v });
        if (ctx.multiline === false && /[\r\n]/.test(v)) {
          // A line break could end the here-document early: refused, never run.
          expect(() => renderShell(ctx.template, vals)).toThrow(/line break/);
          continue;
        }
        cases.push({ v, command: renderShell(ctx.template, vals) });
      }
      const script = cases.map((c) => `( ${c.command}\n) ; printf '\\0%s\\0' $?`).join('\n');
      const parts = bash(script).out.split('\0');
      cases.forEach((c, i) => {
        expect({ v: c.v, command: c.command, out: parts[2 * i], code: parts[2 * i + 1] }).toEqual({ v: c.v, command: c.command, out: ctx.out(c.v), code: '0' });
      });
      expect(readdirSync(dir)).toEqual([]);
    });
  }

  it('a value cannot end a here-document early', () => {
    expect(() => renderShell('cat <<EOF\n{{host.vars.x}}\nEOF', values({ x: 'a\nEOF\ntouch pwned' }))).toThrow();
    const { out } = bash(renderShell('cat <<-EOF\n\t{{host.vars.x}} $(echo ok)\n\tEOF', values({ x: '$(touch pwned) `touch pwned`' })));
    expect(out).toBe('$(touch pwned) `touch pwned` ok\n');
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
  });

  it('keeps the shell syntax the author wrote around templates', () => {
    const cmd = renderShell('v={{version}}; test "$v" = 2.4.1 && echo "{{release}}:{{host.name}}:{{wave}}:{{group}}" | tr a-z A-Z', values());
    expect(bash(cmd).out).toBe('SHOP:APP-01:3:GREEN\n');
    expect(bash(renderShell("echo $((1<<2)) <<< '{{host.vars.x}}' && cat <<< {{host.vars.x}}", values({ x: 'a b' }))).out).toBe('4\na b\n');
  });

  it('renders every known name', () => {
    const vals = values({ port: 8080, nested: { a: [1, 2] }, flag: false });
    expect(
      render(
        '{{release}} {{version}} {{group}} {{wave}} {{host.name}} {{host.address}} {{host.port}} {{host.vars.port}} {{host.labels.zone}} {{ host.vars.flag }}',
        vals,
      ),
    ).toBe('shop 2.4.1 GREEN 3 app-01 10.0.0.1 2222 8080 eu-1 false');
    expect(render('{{host.vars.nested}}', vals)).toBe('{"a":[1,2]}');
    expect(render('{{host.vars.nested.a}}', vals)).toBe('[1,2]');
    expect(bash(renderShell('echo {{host.vars.nested}}', vals)).out).toBe('{"a":[1,2]}\n');
  });

  it('leaves text that is not a template alone (e.g. docker --format {{.State}})', () => {
    expect(render("docker inspect -f '{{.State.Running}}' {{ }} {x}", values())).toBe("docker inspect -f '{{.State.Running}}' {{ }} {x}");
  });

  it('an unknown or unavailable name throws instead of rendering an empty string', () => {
    expect(() => render('{{nope}}', values())).toThrow(/nope/);
    expect(() => renderShell('echo {{host.vars.missing}}', values())).toThrow(/has no vars.missing/);
    expect(() => render('{{host.name}}', { release: 'r', version: '1', group: 'G' })).toThrow(/not available/);
    expect(() => render('{{wave}}', { release: 'r', version: '1', group: 'G' })).toThrow(/not available/);
    expect(() => render('{{host.port}}', { ...values(), host: { ...host(), port: undefined } })).toThrow(/not available/);
  });
});

describe('template names', () => {
  it('knows the documented names and vars/labels sub-keys only', () => {
    for (const n of ['release', 'version', 'group', 'wave', 'host.name', 'host.address', 'host.port', 'host.vars.x', 'host.vars.a.b', 'host.labels.zone'])
      expect(isKnownTemplateName(n)).toBe(true);
    for (const n of ['hostname', 'host', 'host.vars', 'host.nme', 'env.HOME', 'Release', 'service']) expect(isKnownTemplateName(n)).toBe(false);
    expect(isKnownTemplateName('service', ['service'])).toBe(true);
  });
  it('finds names with offsets and tells host use apart', () => {
    expect(templateNames('a {{release}} b {{ host.name }}')).toEqual([
      { name: 'release', offset: 2 },
      { name: 'host.name', offset: 16 },
    ]);
    expect(usesHost('x {{host.vars.a}}')).toBe(true);
    expect(usesHost('x {{release}}')).toBe(false);
  });
});

describe('templateEnv', () => {
  it('exports GRAYWAVE_* values that a command can read unquoted-safe', () => {
    const env = templateEnv({ ...values(), host: { ...host(), name: 'app-01' } });
    expect(env).toMatchObject({
      GRAYWAVE_RELEASE: 'shop',
      GRAYWAVE_VERSION: '2.4.1',
      GRAYWAVE_HOST: 'app-01',
      GRAYWAVE_ADDRESS: '10.0.0.1',
      GRAYWAVE_WAVE: '3',
    });
    expect(bash('printf "%s|" "$GRAYWAVE_RELEASE" "$GRAYWAVE_VERSION" "$GRAYWAVE_HOST" "$GRAYWAVE_ADDRESS" "$GRAYWAVE_WAVE"', env).out).toBe(
      'shop|2.4.1|app-01|10.0.0.1|3|',
    );
    const noHost = templateEnv({ release: 'r', version: '1', group: 'G' });
    expect(noHost.GRAYWAVE_HOST).toBeUndefined();
    expect(noHost.GRAYWAVE_WAVE).toBeUndefined();
  });
});
