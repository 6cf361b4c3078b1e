/**
 * Kiwix's checksum files beside each ZIM (`<zim>.sha256`, `<zim>.md5`), in the format of
 * sha256sum/md5sum: `<hex>  <filename>` (a `*` before the name marks binary mode).
 */
import { PermanentError } from '../../../src/ports/errors.js';

export type ChecksumAlgorithm = 'sha256' | 'md5';

const hexLength: Record<ChecksumAlgorithm, number> = { sha256: 64, md5: 32 };

export function parseChecksumFile(text: string, algorithm: ChecksumAlgorithm, expectedFile: string): string {
  const line = text.split(/\r?\n/).find((l) => l.trim() !== '');
  const match = line ? /^([0-9a-fA-F]+)(?:\s+\*?(.+?))?\s*$/.exec(line.trim()) : null;
  if (!match || match[1]!.length !== hexLength[algorithm]) {
    throw new PermanentError(`the ${algorithm} file for ${expectedFile} does not hold a ${algorithm} digest`);
  }
  const named = match[2]?.split('/').pop();
  if (named !== undefined && named !== expectedFile) {
    throw new PermanentError(`the ${algorithm} file for ${expectedFile} is for another file (${named})`);
  }
  return match[1]!.toLowerCase();
}
