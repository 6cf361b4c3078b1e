/**
 * A folder on this machine standing in for a repository, for `task-mgmt validate` and
 * `task-mgmt run`: the same manifest code reads it, and the person at the keyboard is the admin.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { CollaboratorPermission, PullRequestInfo, RepoHost, RepoVisibility, ReviewInfo, TreeEntry } from '../../ports/repo-host.js';

export class LocalRepoHost implements RepoHost {
  private readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  async getPermission(): Promise<CollaboratorPermission> {
    return { permission: 'admin', roleName: 'admin', flags: { admin: true, maintain: true, push: true, triage: true, pull: true } };
  }

  /** A folder is read by whoever sits at this machine: nobody else asks. */
  async getVisibility(): Promise<RepoVisibility> {
    return 'public';
  }

  async getPullRequest(number: number): Promise<PullRequestInfo> {
    throw new Error(`a local folder has no pull request #${number}`);
  }

  async getDefaultBranchHead(): Promise<{ branch: string; sha: string }> {
    return { branch: 'local', sha: '0'.repeat(40) };
  }

  async listRoot(): Promise<TreeEntry[]> {
    const entries = await readdir(this.root, { withFileTypes: true });
    const result: TreeEntry[] = [];
    for (const entry of entries) {
      const type = entry.isFile() ? 'file' : entry.isDirectory() ? 'dir' : 'other';
      const sha = type === 'file' ? createHash('sha1').update(await readFile(join(this.root, entry.name))).digest('hex') : '0'.repeat(40);
      result.push({ name: entry.name, sha, type });
    }
    return result;
  }

  async readFile(path: string): Promise<string | null> {
    const full = resolve(this.root, path);
    if (full !== this.root && !full.startsWith(this.root + sep)) return null;
    return readFile(full, 'utf8').catch(() => null);
  }

  async listReviews(): Promise<ReviewInfo[]> {
    return [];
  }

  async listChangedFiles(): Promise<string[]> {
    return [];
  }
}
