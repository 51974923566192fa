import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** A file's SHA-256 (hex), read as a stream: artifacts are megabytes. */
export function sha256OfFile(path: string): Promise<string> {
  return new Promise((res, rej) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('error', rej)
      .on('data', (c) => h.update(c))
      .on('end', () => res(h.digest('hex')));
  });
}
