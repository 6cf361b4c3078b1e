/**
 * Log files on disk that RETENTION no longer keeps: those of `task-mgmt run` (DATA_DIR/local/logs)
 * and those written before logs moved to the run store (DATA_DIR/logs). Only regular `.log` files
 * directly in the folder are looked at; a missing folder holds nothing.
 */
import { lstat, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** Deletes at most `limit` `.log` files of `dir` last written before `before`; how many it deleted. */
export async function pruneOldLogFiles(dir: string, before: Date, limit: number): Promise<number> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  let deleted = 0;
  for (const entry of entries) {
    if (deleted >= limit) break;
    if (!entry.isFile() || !entry.name.endsWith('.log')) continue;
    const path = join(dir, entry.name);
    try {
      const stats = await lstat(path);
      if (!stats.isFile() || stats.mtime >= before) continue;
      await unlink(path);
      deleted += 1;
    } catch (error) {
      // Deleted meanwhile (by another replica, or a second `task-mgmt run`): nothing left to do.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return deleted;
}
