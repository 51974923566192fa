/**
 * "Did you mean", unknown provider names and YAML syntax problems in the project's words. Imports nothing of the
 * registries, so the registries (routing rules) and the YAML source can use it without an import cycle.
 */

/** ` (did you mean "concurrency"?)` when one candidate is close to `word`, else ''. */
export function didYouMean(word: string, candidates: readonly string[], quote = '"'): string {
  const best = nearest(word, candidates);
  return best === undefined ? '' : ` (did you mean ${quote}${best}${quote === '{{' ? '}}' : quote}?)`;
}

/** The candidate within a few edits of `word` (case-insensitive), if any. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  if (!candidates.length || !word) return undefined;
  const w = word.toLowerCase();
  const max = Math.max(1, Math.floor(w.length / 3));
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) ((best = c), (bestD = d));
  }
  if (bestD <= max) return best;
  // A prefix of a longer name (`dubbo` for `dubbo-zookeeper`).
  return w.length >= 4 ? candidates.find((c) => c.toLowerCase().startsWith(w)) : undefined;
}

/**
 * Edit distance counting a swap of two neighbours as one edit (`drian` → `drain`), which plain Levenshtein
 * libraries count as two; small enough to write here (names are short).
 */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** `unknown provider "rocketmq"` with the declared names, and the instance's name when the type was written. */
export function unknownProviderMessage(name: string, providers: Record<string, { type: string }>): string {
  const declared = Object.keys(providers);
  if (!declared.length) return `unknown provider "${name}": no providers are declared (add it under providers:, e.g. ${name}: { type: ... })`;
  const byType = declared.filter((d) => providers[d]!.type === name);
  if (byType.length)
    return `unknown provider "${name}": "${name}" is a provider type; use the name you declared it under: ${byType.map((b) => `"${b}"`).join(' or ')}`;
  return `unknown provider "${name}"${didYouMean(name, declared)} (declared: ${declared.join(', ')})`;
}

/**
 * The YAML library's errors, one per syntax problem: the first error of a document is the one that matters (the
 * rest follow from it), with a hint for the two usual causes, a tab and an unquoted `{{ }}`.
 */
export function yamlProblems(
  errors: readonly { message: string; code?: string; pos?: [number, number] }[],
  text: string,
  at: (offset: number) => { line: number; col: number },
): { line: number; col: number; message: string }[] {
  const first = errors[0];
  if (!first) return [];
  const special = tooDeep(first, text, at) ?? unclosedFlow(first, text, at) ?? misaligned(first, text, at);
  if (special) return [special];
  const pos = at(first.pos?.[0] ?? 0);
  const lineText = text.split('\n')[pos.line - 1] ?? '';
  let message = first.message.split('\n')[0]!;
  const tabLine = text.split('\n').findIndex((l) => /^ *\t/.test(l));
  if (first.code === 'TAB_AS_INDENT' || (tabLine >= 0 && Math.abs(tabLine + 1 - pos.line) <= 1)) {
    message += '; hint: indent with spaces, YAML does not allow tabs';
    if (tabLine >= 0 && tabLine + 1 !== pos.line) return [{ line: tabLine + 1, col: 1, message }];
  } else if (/\{\{/.test(lineText) || errors.some((e) => /\{\{/.test(text.split('\n')[at(e.pos?.[0] ?? 0).line - 1] ?? ''))) {
    message += '; hint: quote values that contain {{ }}, e.g. run: "curl http://{{host.address}}:8080/health"';
  }
  return [{ line: pos.line, col: pos.col, message }];
}

type YamlError = { message: string; code?: string; pos?: [number, number] };
type Problem = { line: number; col: number; message: string };

/**
 * The YAML library gives up on collections nested thousands deep with the JavaScript engine's own words ("Maximum
 * call stack size exceeded"): said in the user's terms, at the line's first opening bracket, with the depth found.
 */
function tooDeep(e: YamlError, text: string, at: (offset: number) => { line: number; col: number }): Problem | undefined {
  if (e.code !== 'RESOURCE_EXHAUSTION' || !/call stack/i.test(e.message)) return undefined;
  const pos = at(e.pos?.[0] ?? 0);
  const lineText = text.split('\n')[pos.line - 1] ?? '';
  const open = lineText.search(/[[{]/);
  if (open < 0) return { line: pos.line, col: pos.col, message: 'collections nested too deeply to read' };
  const depth = /^[\s[{]*/.exec(lineText.slice(open))![0].replace(/\s/g, '').length;
  return { line: pos.line, col: open + 1, message: `collections nested too deeply to read (${depth} levels of [ and { here); a playbook needs a few` };
}

/**
 * "Flow sequence … must … end with a ]" at the end of the file means a `[` or `{` that is never closed: point at
 * that opening bracket rather than at the end of the file.
 */
function unclosedFlow(e: YamlError, text: string, at: (offset: number) => { line: number; col: number }): Problem | undefined {
  if (!/^Flow (sequence|map) .*end with a [\]}]/.test(e.message) || text.slice(e.pos?.[0] ?? 0).trim() !== '') return undefined;
  const opener = lastUnclosed(text);
  if (opener === undefined) return undefined;
  const pos = at(opener);
  const [open, close] = text[opener] === '[' ? ['[', ']'] : ['{', '}'];
  return { line: pos.line, col: pos.col, message: `this ${open} is never closed: its ${close} is missing (the file ends first)` };
}

/** Offset of the innermost `[`/`{` still open at the end of `text` (quotes and comments skipped), if any. */
function lastUnclosed(text: string): number | undefined {
  const stack: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '#' && (i === 0 || /\s/.test(text[i - 1]!))) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (ch === '"' || ch === "'") {
      for (i++; i < text.length && text[i] !== ch; i++) if (ch === '"' && text[i] === '\\') i++;
    } else if (ch === '[' || ch === '{') {
      stack.push(i);
    } else if (ch === ']' || ch === '}') {
      stack.pop();
    }
  }
  return stack.at(-1);
}

/**
 * "All mapping items must start at the same column", placed by the YAML library on the blank line before the
 * misaligned key: point at the key itself and say how it is indented.
 */
function misaligned(e: YamlError, text: string, at: (offset: number) => { line: number; col: number }): Problem | undefined {
  if (e.code !== 'BAD_INDENT' || !/^All mapping items must start at the same column/.test(e.message)) return undefined;
  const from = e.pos?.[0] ?? 0;
  const skip = /^\s*/.exec(text.slice(from))![0].length;
  const pos = at(from + skip);
  const key = /^([^\s:#][^:#]*?):(\s|$)/.exec((text.split('\n')[pos.line - 1] ?? '').trim())?.[1];
  const n = pos.col - 1;
  return {
    line: pos.line,
    col: pos.col,
    message: `${key ? `"${key}"` : 'this line'} is indented ${n} space${n === 1 ? '' : 's'}, unlike the mapping it continues: all mapping items must start at the same column`,
  };
}
