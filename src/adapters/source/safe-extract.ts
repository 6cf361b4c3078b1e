/**
 * Extracts an untrusted gzipped tarball. Tar extraction has a long history of path-traversal
 * and link CVEs (node-tar, `docker cp`), so only regular files and folders are written, always
 * inside the target, with caps on the number of entries and the bytes written.
 */
import { mkdir } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import * as tar from 'tar';
import { PermanentError } from '../../ports/errors.js';

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

/** Modes an extracted entry may keep: no setuid, setgid, sticky or group/world write. */
const allowedModeBits = 0o755;

export async function extractTarball(
  source: Readable,
  destDir: string,
  options: { limits?: ExtractLimits; stripComponents?: number; signal?: AbortSignal } = {},
): Promise<ExtractReport> {
  const limits = options.limits ?? defaultExtractLimits;
  const report: ExtractReport = { files: 0, bytes: 0, skipped: [] };
  await mkdir(destDir, { recursive: true });
  let entries = 0;
  let failure: PermanentError | null = null;
  const fail = (error: PermanentError): false => {
    failure ??= error;
    // Stop reading now: past a limit the rest of the archive (an endless or bomb-sized
    // download) would otherwise still be read and inflated to the end, only to be dropped.
    source.destroy(failure);
    return false;
  };
  const extractor = tar.x({
    cwd: destDir,
    strip: options.stripComponents ?? 1,
    // Never restore owners from the archive; never follow links already on disk.
    preserveOwner: false,
    noChmod: false,
    unlink: true,
    strict: true,
    filter: (path, entry) => {
      if (failure) return false;
      const type = 'type' in entry ? entry.type : 'File';
      // Headers that only describe the next entry are not entries of their own.
      if (type === 'GlobalExtendedHeader' || type === 'ExtendedHeader') return false;
      // Skipped entries count too, or an archive of a million links would pass the cap.
      entries += 1;
      if (entries > limits.maxEntries) return fail(new PermanentError(`the source has more than ${limits.maxEntries} entries`));
      if (type !== 'File' && type !== 'OldFile' && type !== 'Directory' && type !== 'ContiguousFile') {
        report.skipped.push(`${path} (${type})`);
        return false;
      }
      if (path.split('/').includes('..') || path.startsWith('/')) {
        report.skipped.push(`${path} (leaves the folder)`);
        return false;
      }
      const size = 'size' in entry ? Number(entry.size ?? 0) : 0;
      if (report.bytes + size > limits.maxBytes) return fail(new PermanentError(`the source is larger than ${limits.maxBytes} bytes`));
      // node-tar writes and then chmods to the archive's mode as is, setuid bits included, and
      // the process umask does not apply to a chmod. Keep the owner able to read and clean up.
      if ('mode' in entry && typeof entry.mode === 'number') {
        entry.mode = (entry.mode & allowedModeBits) | (type === 'Directory' ? 0o700 : 0o600);
      }
      report.files += 1;
      report.bytes += size;
      return true;
    },
  });
  try {
    await pipeline(source, extractor, { signal: options.signal });
  } catch (error) {
    throw failure ?? error;
  }
  if (failure) throw failure;
  return report;
}
