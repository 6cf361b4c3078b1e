/**
 * Extracts an untrusted gzipped tarball. Tar extraction has a long history of path-traversal
 * and link CVEs (node-tar, `docker cp`), so only regular files and folders are written, always
 * inside the target, with caps on the number of entries and the bytes written.
 */
import { mkdir } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import * as tar from 'tar';
import { PermanentError } from '../../core/errors.js';

export interface ExtractLimits {
  maxEntries: number;
  maxBytes: number;
}

export const defaultExtractLimits: ExtractLimits = { maxEntries: 200_000, maxBytes: 4 * 1024 ** 3 };

export interface ExtractReport {
  files: number;
  bytes: number;
  /** Entries left out, with why (links, devices, paths leaving the target). */
  skipped: string[];
}

export async function extractTarball(
  source: Readable,
  destDir: string,
  options: { limits?: ExtractLimits; stripComponents?: number; signal?: AbortSignal } = {},
): Promise<ExtractReport> {
  const limits = options.limits ?? defaultExtractLimits;
  const report: ExtractReport = { files: 0, bytes: 0, skipped: [] };
  await mkdir(destDir, { recursive: true });
  let failure: Error | null = null;
  const extractor = tar.x({
    cwd: destDir,
    strip: options.stripComponents ?? 1,
    // Never restore owners or odd modes from the archive; never follow links already on disk.
    preserveOwner: false,
    noChmod: false,
    unlink: true,
    strict: true,
    filter: (path, entry) => {
      const type = 'type' in entry ? entry.type : 'File';
      const size = 'size' in entry ? Number(entry.size ?? 0) : 0;
      if (type !== 'File' && type !== 'OldFile' && type !== 'Directory' && type !== 'ContiguousFile') {
        if (type !== 'GlobalExtendedHeader' && type !== 'ExtendedHeader') report.skipped.push(`${path} (${type})`);
        return false;
      }
      if (path.split('/').includes('..') || path.startsWith('/')) {
        report.skipped.push(`${path} (leaves the folder)`);
        return false;
      }
      report.files += 1;
      report.bytes += size;
      if (report.files > limits.maxEntries) failure ??= new PermanentError(`the source has more than ${limits.maxEntries} entries`);
      if (report.bytes > limits.maxBytes) failure ??= new PermanentError(`the source is larger than ${limits.maxBytes} bytes`);
      return failure === null;
    },
  });
  await pipeline(source, extractor, { signal: options.signal });
  if (failure) throw failure;
  return report;
}
