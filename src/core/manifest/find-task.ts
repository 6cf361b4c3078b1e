/**
 * Which task a commit declares, from the entries at the root of its tree (DESIGN "Task manifests":
 * task-mgmt.yml, then Dockerfile, then Procfile).
 */
import type { TreeEntry } from '../../ports/repo-host.js';

export interface ContainerTask {
  name: string;
  type: 'container';
  dockerfile: string;
  /** The files that define this task, with their git object ids (for the review gate and digest). */
  definitionFiles: { path: string; sha: string }[];
}

export type TaskLookup = { ok: true; tasks: ContainerTask[] } | { ok: false; reason: string };

export function findTasks(rootEntries: readonly TreeEntry[], sha: string): TaskLookup {
  const byName = new Map(rootEntries.filter((entry) => entry.type === 'file').map((entry) => [entry.name, entry]));
  const at = `\`${sha.slice(0, 12)}\``;
  if (byName.has('task-mgmt.yml')) {
    return {
      ok: false,
      reason: `${at} has a \`task-mgmt.yml\`, which this version of task-mgmt cannot read yet; remove it to run the root \`Dockerfile\`.`,
    };
  }
  const dockerfile = byName.get('Dockerfile');
  if (dockerfile) {
    return { ok: true, tasks: [{ name: 'default', type: 'container', dockerfile: 'Dockerfile', definitionFiles: [{ path: 'Dockerfile', sha: dockerfile.sha }] }] };
  }
  if (byName.has('Procfile')) {
    return { ok: false, reason: `${at} has only a \`Procfile\`, which this version of task-mgmt cannot run yet; add a \`Dockerfile\`.` };
  }
  return {
    ok: false,
    reason: `${at} declares no task: add a \`Dockerfile\` (or a \`task-mgmt.yml\`) at the root of the repository.`,
  };
}
