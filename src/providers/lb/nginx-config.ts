/**
 * Editing one `server` line of an nginx `upstream` block, as pure text functions.
 *
 * The file is tokenised the way nginx reads it (words, quoted strings, `# comments`, `;`, `{`, `}`), so that
 * comments, strings and other blocks cannot be mistaken for directives. Edits splice the original text at token
 * offsets: everything outside the changed ` down` token stays byte-for-byte the same.
 */

export class NginxConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NginxConfigError';
  }
}

interface Token {
  /** The word with quotes removed (escapes kept as written: enough for names and addresses). */
  value: string;
  start: number;
  end: number;
  kind: 'word' | ';' | '{' | '}';
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
    } else if (c === '#') {
      while (i < n && text[i] !== '\n') i++;
    } else if (c === ';' || c === '{' || c === '}') {
      tokens.push({ value: c, start: i, end: i + 1, kind: c });
      i++;
    } else if (c === '"' || c === "'") {
      const start = i++;
      let value = '';
      while (i < n && text[i] !== c) {
        if (text[i] === '\\' && i + 1 < n) value += text[i++];
        value += text[i++];
      }
      if (i >= n) throw new NginxConfigError(`unterminated quoted string at ${position(text, start)}`);
      i++;
      tokens.push({ value, start, end: i, kind: 'word' });
    } else {
      const start = i;
      while (i < n) {
        const d = text[i]!;
        if (d === '\\' && i + 1 < n) {
          i += 2;
        } else if (d === '$' && text[i + 1] === '{') {
          // `${var}` inside a word: its braces are not block braces
          const close = text.indexOf('}', i);
          i = close < 0 ? n : close + 1;
        } else if (' \t\r\n;{}'.includes(d) || (d === '#' && i === start)) {
          break;
        } else {
          i++;
        }
      }
      tokens.push({ value: text.slice(start, i), start, end: i, kind: 'word' });
    }
  }
  return tokens;
}

function position(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${before[before.length - 1]!.length + 1}`;
}

/** One directive: its words and what ended it (`;` or the `{` of a block). */
interface Directive {
  words: Token[];
  end: Token;
  /** Names of the enclosing blocks, outermost first (e.g. ['http', 'upstream']). */
  path: string[];
  /** For a block directive: the directives inside it. */
  children?: Directive[];
}

function parse(text: string): Directive[] {
  const tokens = tokenize(text);
  const root: Directive[] = [];
  const stack: { list: Directive[]; path: string[] }[] = [{ list: root, path: [] }];
  let words: Token[] = [];
  for (const t of tokens) {
    const top = stack[stack.length - 1]!;
    if (t.kind === 'word') {
      words.push(t);
    } else if (t.kind === ';') {
      if (words.length === 0) throw new NginxConfigError(`unexpected ";" at ${position(text, t.start)}`);
      top.list.push({ words, end: t, path: top.path });
      words = [];
    } else if (t.kind === '{') {
      if (words.length === 0) throw new NginxConfigError(`unexpected "{" at ${position(text, t.start)}`);
      const d: Directive = { words, end: t, path: top.path, children: [] };
      top.list.push(d);
      stack.push({ list: d.children!, path: [...top.path, words[0]!.value] });
      words = [];
    } else {
      if (words.length > 0) throw new NginxConfigError(`missing ";" before "}" at ${position(text, t.start)}`);
      if (stack.length === 1) throw new NginxConfigError(`unexpected "}" at ${position(text, t.start)}`);
      stack.pop();
    }
  }
  if (words.length > 0) throw new NginxConfigError(`missing ";" at the end of the file`);
  if (stack.length > 1) throw new NginxConfigError(`missing "}" at the end of the file`);
  return root;
}

function walk(list: Directive[], visit: (d: Directive) => void): void {
  for (const d of list) {
    visit(d);
    if (d.children) walk(d.children, visit);
  }
}

export interface UpstreamServer {
  /** The address as written (`10.0.0.5:8080`, `app01.internal`, `unix:/run/app.sock`). */
  address: string;
  /** The parameters after the address, in order (`weight=5`, `down`, …). */
  params: string[];
  down: boolean;
  /** The directive's text, from `server` to its `;` inclusive. */
  text: string;
  line: number;
}

export interface Upstream {
  name: string;
  servers: UpstreamServer[];
}

/** Every `upstream NAME { … }` block of the file with its `server` lines. */
export function listUpstreams(text: string): Upstream[] {
  const out: Upstream[] = [];
  walk(parse(text), (d) => {
    if (d.words[0]!.value !== 'upstream' || !d.children || d.words.length !== 2) return;
    out.push({
      name: d.words[1]!.value,
      servers: d.children.filter((s) => s.words[0]!.value === 'server' && s.words.length >= 2 && !s.children).map((s) => toServer(text, s)),
    });
  });
  return out;
}

function toServer(text: string, d: Directive): UpstreamServer {
  const params = d.words.slice(2).map((w) => w.value);
  return {
    address: d.words[1]!.value,
    params,
    down: params.includes('down'),
    text: text.slice(d.words[0]!.start, d.end.end),
    line: text.slice(0, d.words[0]!.start).split('\n').length,
  };
}

function findDirective(text: string, upstream: string, address: string): Directive {
  const blocks: Directive[] = [];
  walk(parse(text), (d) => {
    if (d.words[0]!.value === 'upstream' && d.children && d.words[1]?.value === upstream) blocks.push(d);
  });
  if (blocks.length === 0) {
    const names = listUpstreams(text).map((u) => u.name);
    throw new NginxConfigError(
      `no "upstream ${upstream} { … }" block in the file` + (names.length ? ` (upstreams found: ${names.join(', ')})` : ' (it has no upstream blocks)'),
    );
  }
  if (blocks.length > 1) throw new NginxConfigError(`"upstream ${upstream}" is defined ${blocks.length} times in the file`);
  const servers = blocks[0]!.children!.filter((s) => s.words[0]!.value === 'server' && !s.children);
  const matches = servers.filter((s) => s.words[1]?.value === address);
  if (matches.length === 0) {
    const have = servers.map((s) => s.words[1]?.value).filter(Boolean);
    throw new NginxConfigError(
      `no "server ${address}" line in upstream ${upstream}` + (have.length ? ` (servers: ${have.join(', ')})` : ' (it has no server lines)'),
    );
  }
  if (matches.length > 1) throw new NginxConfigError(`"server ${address}" appears ${matches.length} times in upstream ${upstream}`);
  return matches[0]!;
}

/** The `server ADDRESS …;` line of `upstream NAME`. Throws NginxConfigError (saying what was found instead) when absent or ambiguous. */
export function findServer(text: string, upstream: string, address: string): UpstreamServer {
  return toServer(text, findDirective(text, upstream, address));
}

/**
 * Marks the server `down` (inserted as ` down` right after its last parameter) or removes the `down` parameter
 * together with the whitespace before it, so that adding then removing gives back the original bytes.
 * `changed` is false (and `text` the input) when the line already was in the asked state.
 */
export function setServerDown(text: string, upstream: string, address: string, down: boolean): { text: string; changed: boolean } {
  const d = findDirective(text, upstream, address);
  const downWords = d.words.slice(2).filter((w) => w.value === 'down');
  if (down) {
    if (downWords.length > 0) return { text, changed: false };
    const last = d.words[d.words.length - 1]!;
    return { text: text.slice(0, last.end) + ' down' + text.slice(last.end), changed: true };
  }
  if (downWords.length === 0) return { text, changed: false };
  let out = text;
  // Right to left so earlier offsets stay valid (a line may say `down` twice).
  for (const w of [...downWords].reverse()) {
    const idx = d.words.indexOf(w);
    const prev = d.words[idx - 1]!;
    const gap = out.slice(prev.end, w.start);
    // Remove the whitespace before `down` only when it is plain whitespace: a comment in between stays.
    const from = /^[ \t]+$/.test(gap) ? prev.end : w.start;
    let to = w.end;
    if (from === w.start && /^[ \t]+/.test(out.slice(w.end))) to += /^[ \t]+/.exec(out.slice(w.end))![0].length;
    out = out.slice(0, from) + out.slice(to);
  }
  return { text: out, changed: true };
}

/**
 * Sets the server's `weight=` parameter to `weight` (replacing the one written, or appended after its last
 * parameter), or removes it (with the whitespace before it) when `weight` is null, so that a warm-up followed by
 * putting back the drain-time value gives back the original bytes. `changed` is false when it already is so.
 */
export function setServerWeight(text: string, upstream: string, address: string, weight: number | null): { text: string; changed: boolean } {
  const d = findDirective(text, upstream, address);
  const words = d.words.slice(2).filter((w) => w.value.startsWith('weight='));
  if (words.length > 1) throw new NginxConfigError(`"server ${address}" in upstream ${upstream} has ${words.length} weight= parameters`);
  const w = words[0];
  if (weight === null) {
    if (!w) return { text, changed: false };
    const prev = d.words[d.words.indexOf(w) - 1]!;
    const gap = text.slice(prev.end, w.start);
    const from = /^[ \t]+$/.test(gap) ? prev.end : w.start;
    return { text: text.slice(0, from) + text.slice(w.end), changed: true };
  }
  const want = `weight=${weight}`;
  if (w) return w.value === want ? { text, changed: false } : { text: text.slice(0, w.start) + want + text.slice(w.end), changed: true };
  const addr = d.words[1]!;
  return { text: text.slice(0, addr.end) + ' ' + want + text.slice(addr.end), changed: true };
}

/** The `weight=` value written on the server line, or null when it has none (nginx's default 1). */
export function serverWeight(server: UpstreamServer): number | null {
  const p = server.params.find((x) => x.startsWith('weight='));
  return p === undefined ? null : Number(p.slice(7));
}
