/**
 * What a page may show a person before they ask anything: which of a run's buttons (Cancel,
 * Re-run, Extend pin) the run service would let them use, and which tasks a repository's head
 * offers with their parameters. Read-only: nothing here is recorded or counted toward the command
 * limit, and the decisions come from the same policy (`authorize`) the use cases apply when the
 * button is pressed, so a button is shown exactly where pressing it can be allowed.
 */
import { readManifest } from '../manifest/read-manifest.js';
import type { LoadedManifest, ManifestError } from '../manifest/load-manifest.js';
import { authorize } from '../policy/authorize.js';
import { isFinal, type RepoRef, type Requester, type Run } from '../runs/run.js';
import { headOf, permissionOf, type RunServiceDeps, type RunTarget } from './requests.js';

export interface RunButtons {
  /** The run is queued or running and the viewer may cancel runs here. */
  cancel: boolean;
  /** The run has ended and the viewer has the role its request needed. */
  rerun: boolean;
  /** The run's outputs are pinned and the viewer may keep outputs pinned here. */
  pin: boolean;
}

export type TaskList =
  | { kind: 'tasks'; sha: string; manifest: LoadedManifest }
  | { kind: 'manifest_errors'; sha: string; errors: ManifestError[] }
  | { kind: 'no_tasks'; sha: string; reason: string }
  /** The viewer may not read the repository, or it (or the ref) does not exist. */
  | { kind: 'not_found' }
  | { kind: 'unavailable'; error: string };

export interface RunViewsDeps extends Pick<RunServiceDeps, 'hostFor' | 'taskTypes' | 'defaultImage'> {
  canRead(requester: Requester, repo: RepoRef): Promise<boolean>;
}

export class RunViews {
  constructor(private readonly deps: RunViewsDeps) {}

  /** The buttons `requester` may use on `run` (which they may read: the caller checked). */
  async buttons(requester: Requester, run: Run): Promise<RunButtons> {
    const none = { cancel: false, rerun: false, pin: false };
    if (requester.kind === 'app') return none;
    const host = await this.deps.hostFor(run.repo);
    const permission = await permissionOf(host, requester);
    const may = (action: 'cancel' | 'pin') => authorize({ actor: requester.login, permission, action }).allowed;
    const final = isFinal(run.state);
    return {
      cancel: !final && may('cancel'),
      rerun: final && authorize({ actor: requester.login, permission, required: run.requiredRole }).allowed,
      pin: final && run.pinnedUntil !== null && may('pin'),
    };
  }

  /** The tasks at the head of `target`, as `/help` would list them. */
  async tasks(requester: Requester, repo: RepoRef, target: RunTarget): Promise<TaskList> {
    if (!(await this.deps.canRead(requester, repo))) return { kind: 'not_found' };
    try {
      const host = await this.deps.hostFor(repo);
      const sha = await headOf(host, target);
      const read = await readManifest(host, sha, this.deps.taskTypes, this.deps.defaultImage);
      if (read.ok) return { kind: 'tasks', sha, manifest: read.manifest };
      return 'errors' in read ? { kind: 'manifest_errors', sha, errors: read.errors } : { kind: 'no_tasks', sha, reason: read.reason };
    } catch (error) {
      // GitHub failing past its retries, or answering what the manifest reader cannot use.
      return { kind: 'unavailable', error: error instanceof Error ? error.message : String(error) };
    }
  }
}
