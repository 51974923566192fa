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

/** Substitution into a shell command: every value is shell-quoted, so a host name cannot inject a command. */
export function renderShell(template: string, values: TemplateValues): string {
  return template.replace(TAG, (_, name: string) => quote([lookup(name, values)]));
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
