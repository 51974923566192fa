/**
 * The served-by header: which instance of each app served a request, and its group — written by the train sandbox
 * (src/sandbox/router.ts, src/sandbox/chain.ts), read by the green-only gate and the train demo's summary. No
 * imports: the sandbox's host processes load it and start faster without the rest of graywave.
 */
export const SERVED_BY_HEADER = 'x-graywave-served-by';

export interface ServedBy {
  app: string;
  group: string;
  instance: string;
}

/** `bfe=GREEN@127.0.3.1,order=GREEN@127.0.3.11` → one entry per app; undefined when the text is not that shape. */
export function parseServedBy(text: string): ServedBy[] | undefined {
  const out: ServedBy[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*([^=\s,]+)=([^@\s,]+)@([^\s,]+)\s*$/.exec(part);
    if (!m) return undefined;
    out.push({ app: m[1]!, group: m[2]!, instance: m[3]! });
  }
  return out.length ? out : undefined;
}
