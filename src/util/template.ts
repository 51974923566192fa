import { quote } from 'shell-quote';
import type { Host } from '../playbook/types.js';

const TAG = /\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}/g;

/** The values templates can use. `host` and `wave` are absent where a template is rendered outside a host or wave. */
export interface TemplateValues {
  release: string;
  version: string;
  group: string;
  wave?: number;
  host?: Host;
  /** Extra names a particular context adds (e.g. routing rules). */
  extra?: Record<string, string | number>;
}

/** Names that may appear in templates, for validation. `host.vars.*` and `host.labels.*` accept any sub-key. */
export function isKnownTemplateName(name: string, extra: readonly string[] = []): boolean {
  if (['release', 'version', 'group', 'wave', 'host.name', 'host.address', 'host.port'].includes(name)) return true;
  if (/^host\.(vars|labels)\.[\w.-]+$/.test(name)) return true;
  return extra.includes(name);
}

/** Every {{name}} in a string, with its offset (for FILE:LINE:COL messages). */
export function templateNames(text: string): { name: string; offset: number }[] {
  return [...text.matchAll(TAG)].map((m) => ({ name: m[1]!, offset: m.index! }));
}

export function usesHost(text: string): boolean {
  return templateNames(text).some((t) => t.name.startsWith('host.'));
}

function lookup(name: string, values: TemplateValues): string {
  const fail = (): never => {
    throw new Error(`template value {{${name}}} is not available here`);
  };
  if (values.extra && name in values.extra) return String(values.extra[name]);
  switch (name) {
    case 'release':
      return values.release;
    case 'version':
      return values.version;
    case 'group':
      return values.group;
    case 'wave':
      return values.wave === undefined ? fail() : String(values.wave);
  }
  if (!name.startsWith('host.')) return fail();
  const host = values.host ?? fail();
  if (name === 'host.name') return host.name;
  if (name === 'host.address') return host.address;
  if (name === 'host.port') return host.port === undefined ? fail() : String(host.port);
  const [, bag, ...path] = name.split('.');
  let cur: unknown = bag === 'vars' ? host.vars : host.labels;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || !(key in (cur as object))) {
      throw new Error(`host ${host.name} has no ${bag}.${path.join('.')} (used as {{${name}}})`);
    }
    cur = (cur as Record<string, unknown>)[key];
  }
  return typeof cur === 'object' ? JSON.stringify(cur) : String(cur);
}

/** Plain substitution (URLs, znode paths, provider options). */
export function render(template: string, values: TemplateValues): string {
  return template.replace(TAG, (_, name: string) => lookup(name, values));
}

type ShellFrame = 'plain' | 'sub' | 'backtick' | 'single' | 'double' | 'ansi';

/** A value made literal for the quoting context it lands in (the author may have written '{{x}}' or "{{x}}"). */
function quoteIn(frame: ShellFrame, value: string): string {
  if (frame === 'single') return value.replace(/'/g, `'\\''`);
  if (frame === 'double') return value.replace(/[\\"$`]/g, (c) => `\\${c}`);
  if (frame === 'ansi') return value.replace(/[\\']/g, (c) => `\\${c}`);
  return quote([value]);
}

/** A value inside a here-document body: escaped when the body expands, and never able to end the body early. */
function quoteInHeredoc(expands: boolean, value: string, name: string): string {
  if (/[\n\r]/.test(value)) throw new Error(`{{${name}}} holds a line break and cannot be placed in a here-document safely`);
  return expands ? value.replace(/[\\$`]/g, (c) => `\\${c}`) : value;
}

/**
 * Substitution into a shell command: every value is shell-quoted for the place it lands, so neither a host name
 * nor a var can inject a command — also when the template sits inside '…', "…", $(…) or backticks.
 */
export function renderShell(template: string, values: TemplateValues): string {
  const tag = new RegExp(TAG.source, 'y');
  const stack: ShellFrame[] = ['plain'];
  const heredocs: { delim: string; expands: boolean; tabs: boolean }[] = [];
  let out = '';
  for (let i = 0; i < template.length;) {
    const frame = stack[stack.length - 1]!;
    if (template[i] === '\n' && heredocs.length && (frame === 'plain' || frame === 'sub')) {
      // Here-document bodies follow the line that opened them; each ends at a line equal to its delimiter.
      i += 1;
      out += '\n';
      for (const h of heredocs.splice(0)) {
        while (i < template.length) {
          const eol = template.indexOf('\n', i);
          const line = template.slice(i, eol < 0 ? template.length : eol);
          const end = (h.tabs ? line.replace(/^\t+/, '') : line) === h.delim;
          out += end ? line : line.replace(TAG, (_, name: string) => quoteInHeredoc(h.expands, lookup(name, values), name));
          i += line.length;
          if (eol >= 0) ((out += '\n'), (i += 1));
          if (end) break;
        }
      }
      continue;
    }
    const here = frame === 'plain' || frame === 'sub' ? /^<<(-?)[ \t]*(['"]?)([A-Za-z_][\w-]*)\2/.exec(template.slice(i, i + 200)) : null;
    if (here && template[i + 2] !== '<') {
      heredocs.push({ delim: here[3]!, expands: here[2] === '', tabs: here[1] === '-' });
      out += here[0];
      i += here[0].length;
      continue;
    }
    tag.lastIndex = i;
    const m = template.startsWith('{{', i) ? tag.exec(template) : null;
    if (m) {
      let quoted = quoteIn(frame, lookup(m[1]!, values));
      // Inside `…` the shell first removes one level of backslashes before $ ` \ : add one per level.
      for (const f of stack) if (f === 'backtick') quoted = quoted.replace(/[\\`$]/g, (ch) => `\\${ch}`);
      out += quoted;
      i += m[0].length;
      continue;
    }
    const c = template[i]!;
    const two = template.slice(i, i + 2);
    let take = 1;
    if (frame === 'single') {
      if (c === "'") stack.pop();
    } else if (frame === 'ansi') {
      if (c === '\\') take = 2;
      else if (c === "'") stack.pop();
    } else if (c === '\\') take = 2;
    else if (frame === 'double') {
      if (c === '"') stack.pop();
      else if (two === '$(') (stack.push('sub'), (take = 2));
      else if (c === '`') stack.push('backtick');
    } else if (frame === 'backtick' && c === '`') stack.pop();
    else if (c === '#' && (i === 0 || /[\s;&|(]/.test(template[i - 1]!))) take = Math.max(1, (template.indexOf('\n', i) + 1 || template.length + 1) - 1 - i);
    else if (c === "'") stack.push('single');
    else if (two === "$'") (stack.push('ansi'), (take = 2));
    else if (c === '"') stack.push('double');
    else if (two === '$(' || c === '(') ((take = c === '(' ? 1 : 2), stack.push('sub'));
    else if (c === ')' && frame === 'sub') stack.pop();
    else if (c === '`') stack.push('backtick');
    out += template.slice(i, i + take);
    i += take;
  }
  return out;
}

/** The environment exported to every step command. */
export function templateEnv(values: TemplateValues): Record<string, string> {
  const env: Record<string, string> = {
    GRAYWAVE_RELEASE: values.release,
    GRAYWAVE_VERSION: values.version,
    GRAYWAVE_GROUP: values.group,
  };
  if (values.wave !== undefined) env.GRAYWAVE_WAVE = String(values.wave);
  if (values.host) {
    env.GRAYWAVE_HOST = values.host.name;
    env.GRAYWAVE_ADDRESS = values.host.address;
  }
  return env;
}
