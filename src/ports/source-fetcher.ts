/** Brings a repository's files at one exact commit onto the worker's disk. */
import type { RepoRef } from '../core/runs/run.js';

export interface SourceFetcher {
  /** Downloads and extracts the tree at `sha` into `destDir` (created empty by the caller). */
  fetch(repo: RepoRef, sha: string, destDir: string, signal: AbortSignal): Promise<void>;
}
