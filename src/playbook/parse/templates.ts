import { templateSuggestion } from '../messages.js';
import { isKnownTemplateName, templateNames } from '../../util/template.js';
import type { Host } from '../types.js';
import type { ParseContext } from './context.js';

/** Extra template names that particular places may use (beyond release/version/group/wave/host.*). */
const EXTRA_TEMPLATE_NAMES = ['service', 'blueVersion', 'greenVersion', 'blueWeight', 'greenWeight'];

function hostHas(host: Host, name: string): boolean {
  if (name === 'host.port') return host.port !== undefined;
  const [, bag, ...path] = name.split('.');
  let cur: unknown = bag === 'vars' ? host.vars : host.labels;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || !(key in (cur as object))) return false;
    cur = (cur as Record<string, unknown>)[key];
  }
  return true;
}

/** `host.vars.X` / `host.labels.X` names the fleet defines (for "did you mean"). */
function hostVarNames(hosts: Host[]): string[] {
  const names = new Set<string>();
  for (const h of hosts) {
    for (const k of Object.keys(h.vars)) names.add(`host.vars.${k}`);
    for (const k of Object.keys(h.labels)) names.add(`host.labels.${k}`);
  }
  return [...names];
}

/**
 * Every {{name}} anywhere in the playbook must be a known name (an unknown one is an error, not an empty string),
 * and a per-host value must exist on every host (or the release would fail half-way on the first host without it).
 */
export function checkTemplates(c: ParseContext, hosts: Host[]): void {
  const { src } = c;
  for (const { path, value } of src.strings()) {
    for (const t of templateNames(value)) {
      if (!isKnownTemplateName(t.name, EXTRA_TEMPLATE_NAMES)) {
        src.add(
          path,
          `unknown template variable {{${t.name}}}${templateSuggestion(t.name, hostVarNames(hosts), EXTRA_TEMPLATE_NAMES)} (known: release, version, group, wave, host.name, host.address, host.port, host.vars.*, host.labels.*)`,
          { offset: t.offset },
        );
      } else if (/^host\.(vars|labels)\./.test(t.name) || t.name === 'host.port') {
        const missing = hosts.filter((h) => !hostHas(h, t.name)).map((h) => h.name);
        if (missing.length)
          src.add(path, `{{${t.name}}} is not set on host(s) ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`, {
            offset: t.offset,
          });
      }
    }
  }
}
