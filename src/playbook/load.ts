import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { applyOverrides } from './overrides.js';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { parseRouting } from '../routing/index.js';
import type { ParseContext } from './parse/context.js';
import { parseGates } from './parse/gates.js';
import { isRunInventory, parseHosts } from './parse/hosts.js';
import { addZodIssues } from './parse/issues.js';
import { parseHotfix, parseNotify } from './parse/policy.js';
import { parseProviders } from './parse/providers.js';
import { readSource } from './parse/read.js';
import type { Source } from './source.js';
import { parseState } from './parse/state.js';
import { parseSteps, parseSwitchover } from './parse/steps.js';
import { checkTemplates } from './parse/templates.js';
import { parseTransport } from './parse/transport.js';
import { parseWaves } from './parse/waves.js';
import { topSchema } from './schema.js';
import type { Playbook } from './types.js';

/**
 * Reads and validates a playbook. Every problem is collected (not just the first) and thrown together as a
 * ConfigError whose lines read `FILE:LINE:COL: message`, FILE as the user wrote it (an inventory file beside it:
 * relative to the working directory when the playbook's path was relative). Nothing is contacted and nothing is run.
 * Each section has its own parser in src/playbook/parse/.
 */
export function loadPlaybook(path: string, parsed?: Source): Playbook {
  try {
    return loadResolved(path, true, parsed);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const shown = (f: string) => (f === resolve(path) ? path : isAbsolute(path) || !isAbsolute(f) ? f : relative(process.cwd(), f) || f);
    throw new ConfigError(err.issues.map((i) => ({ ...i, file: shown(i.file) })));
  }
}

/** The playbook file read (or `parsed` already) and its top level checked: what every section parser starts from. */
function readPlaybook(file: string, parsed?: Source): ParseContext {
  const issues: ConfigIssue[] = [];
  const src = parsed ?? readSource(file, issues);
  if (!src) throw new ConfigError(issues);
  if (src.issues.length) throw new ConfigError(src.issues);
  applyOverrides(src); // --set KEY=VALUE from the command line (src/playbook/overrides.ts)
  const data = src.data();
  if (src.issues.length) throw new ConfigError(src.issues);
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError([{ file, line: 1, col: 1, message: 'a playbook is a YAML mapping with name, version, hosts and steps' }]);
  }
  const top = topSchema.safeParse(data);
  if (!top.success) addZodIssues(src, [], top.error);
  return { src, dir: dirname(file), d: data as Record<string, unknown>, top: top.success ? top.data : undefined, issues };
}

function loadResolved(path: string, runInventory = true, parsed?: Source): Playbook {
  const file = resolve(path);
  const c = readPlaybook(file, parsed);
  // Hosts from a command or a registry: the rest of the playbook is checked first (without hosts), so that a broken
  // or hostile playbook never runs its inventory command or contacts its registry (issue #9: no command run).
  if (runInventory && isRunInventory(c.d, c.dir)) loadResolved(path, false);
  const hosts = parseHosts(c, runInventory) ?? [];
  const transport = parseTransport(c, hosts);
  const state = parseState(c);
  const { providers, uses } = parseProviders(c);
  const steps = parseSteps(c, uses);
  const verify = parseGates(c, uses, 'verify');
  const watch = parseGates(c, uses, 'watch');
  const switchover = parseSwitchover(c);
  const notify = parseNotify(c);
  const waves = parseWaves(c, hosts);
  // Routing rules (src/routing): release-level gray rules, published before wave 1 and widened after each wave.
  const routing = parseRouting(
    c.d.routing,
    providers,
    (p, m, o) => c.src.add(p, m, o),
    (p, e) => addZodIssues(c.src, p, e),
  );
  const hotfix = parseHotfix(c);
  checkTemplates(c, hosts);

  const all = [...c.issues, ...c.src.issues].sort((a, b) => (a.file === b.file ? a.line - b.line || a.col - b.col : a.file < b.file ? -1 : 1));
  if (all.length || !c.top) throw new ConfigError(all.length ? all : [{ file, line: 1, col: 1, message: 'invalid playbook' }]);
  const t = c.top;
  return {
    file,
    dir: c.dir,
    name: t.name,
    version: t.version,
    group: t.group,
    hosts,
    transport,
    waves,
    providers,
    steps,
    verify,
    watch,
    onFailure: t.onFailure,
    state,
    ...(routing.length ? { routing } : {}),
    ...(hotfix ? { hotfix } : {}),
    ...(t.restoreTimeout !== undefined ? { restoreTimeoutMs: t.restoreTimeout } : {}),
    notify,
    switchover,
  };
}
