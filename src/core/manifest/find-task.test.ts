import { describe, expect, it } from 'vitest';
import { findTasks } from './find-task.js';

const sha = 'a'.repeat(40);
const files = (...names: string[]) => names.map((name, i) => ({ name, sha: `${i}`.repeat(40), type: 'file' }));

describe('findTasks', () => {
  it('runs a root Dockerfile as the task "default"', () => {
    expect(findTasks(files('README.md', 'Dockerfile'), sha)).toEqual({
      ok: true,
      tasks: [{ name: 'default', type: 'container', dockerfile: 'Dockerfile', definitionFiles: [{ path: 'Dockerfile', sha: '1'.repeat(40) }] }],
    });
  });

  it('does not take a folder named Dockerfile for one', () => {
    expect(findTasks([{ name: 'Dockerfile', sha: 'b'.repeat(40), type: 'dir' }], sha).ok).toBe(false);
  });

  it.each([
    [files('README.md'), /declares no task/],
    [files('Procfile'), /only a `Procfile`/],
    [files('task-mgmt.yml', 'Dockerfile'), /`task-mgmt.yml`/],
    [files('dockerfile'), /declares no task/],
  ])('%j is refused with a reason', (entries, reason) => {
    const lookup = findTasks(entries, sha);
    expect(lookup.ok).toBe(false);
    expect(!lookup.ok && lookup.reason).toMatch(reason);
    expect(!lookup.ok && lookup.reason).toContain(sha.slice(0, 12));
  });
});
