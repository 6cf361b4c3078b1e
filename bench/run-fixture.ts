/** A run record shaped like one a `/run` comment creates, for the benchmarks that store runs. */
import type { NewRun } from '../src/ports/run-store.js';

export function benchRun(id: string): NewRun {
  return {
    id,
    repo: { owner: 'bench-owner', name: 'bench-repo', installationId: 4242 },
    number: 17,
    isPullRequest: true,
    sha: '3f786850e387550fdab836ed7e6dc881de23001b',
    task: 'archive',
    taskType: 'dockerfile',
    dockerfile: 'tasks/archive/Dockerfile',
    params: { url: 'https://example.org/collection', depth: '2' },
    requestedBy: 'octocat',
    requesterKind: 'user',
    requiredRole: 'write',
    trigger: 'comment',
    commentId: 123456789,
    approvals: [],
    manifestDigest: '',
    spec: { with: {}, network: false },
    needs: [],
  };
}

/** Ids in creation order, unique per benchmark case. */
export function benchRunIds(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(6, '0')}`);
}
