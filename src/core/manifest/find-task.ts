/**
 * Which task a commit declares, from the names at the root of its tree (DESIGN "Task manifests":
 * task-mgmt.yml, then Dockerfile, then Procfile).
 */
export interface ContainerTask {
  name: string;
  type: 'container';
  dockerfile: string;
}

export type TaskLookup = { ok: true; tasks: ContainerTask[] } | { ok: false; reason: string };

export function findTasks(rootEntries: readonly string[], sha: string): TaskLookup {
  const names = new Set(rootEntries);
  const at = `\`${sha.slice(0, 12)}\``;
  if (names.has('task-mgmt.yml')) {
    return {
      ok: false,
      reason: `${at} has a \`task-mgmt.yml\`, which this version of task-mgmt cannot read yet; remove it to run the root \`Dockerfile\`.`,
    };
  }
  if (names.has('Dockerfile')) return { ok: true, tasks: [{ name: 'default', type: 'container', dockerfile: 'Dockerfile' }] };
  if (names.has('Procfile')) {
    return { ok: false, reason: `${at} has only a \`Procfile\`, which this version of task-mgmt cannot run yet; add a \`Dockerfile\`.` };
  }
  return {
    ok: false,
    reason: `${at} declares no task: add a \`Dockerfile\` (or a \`task-mgmt.yml\`) at the root of the repository.`,
  };
}
