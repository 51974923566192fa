import { readFileSync } from 'node:fs';

/** graywave's version: package.json's, the one place it is written (read from dist/ and src/ alike: both sit one level below it). */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
