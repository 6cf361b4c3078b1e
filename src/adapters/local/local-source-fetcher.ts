/**
 * SourceFetcher for a local folder: a copy of its files (without `.git`, `node_modules`, and the
 * folder holding task-mgmt's own data, which is often inside it), as a tarball would have them.
 */
import { cp, readdir } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import type { SourceFetcher } from '../../ports/source-fetcher.js';

export class LocalSourceFetcher implements SourceFetcher {
  private readonly root: string;
  private readonly dataDir: string;

  constructor(root: string, dataDir: string) {
    this.root = resolve(root);
    this.dataDir = resolve(dataDir);
  }

  async fetch(_repo: unknown, _sha: string, destDir: string, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    for (const name of await readdir(this.root)) {
      signal.throwIfAborted();
      const source = join(this.root, name);
      if (name === '.git' || name === 'node_modules') continue;
      // The data folder (and anything holding it) would be copied into itself.
      if (this.dataDir === source || this.dataDir.startsWith(source + sep)) continue;
      await cp(source, join(destDir, name), {
        recursive: true,
        filter: (path) => basename(path) !== '.git',
        // Links are copied as links, never followed: the build context stays inside the folder.
        verbatimSymlinks: true,
      });
    }
  }
}
