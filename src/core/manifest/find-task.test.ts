import { describe, expect, it } from 'vitest';
import { findTasks } from './find-task.js';

const sha = 'a'.repeat(40);

describe('findTasks', () => {
  it('runs a root Dockerfile as the task "default"', () => {
    expect(findTasks(['README.md', 'Dockerfile'], sha)).toEqual({
      ok: true,
      tasks: [{ name: 'default', type: 'container', dockerfile: 'Dockerfile' }],
    });
  });

  it.each([
    [['README.md'], /declares no task/],
    [['Procfile'], /only a `Procfile`/],
    [['task-mgmt.yml', 'Dockerfile'], /`task-mgmt.yml`/],
    [['dockerfile'], /declares no task/],
  ])('%j is refused with a reason', (entries, reason) => {
    const lookup = findTasks(entries, sha);
    expect(lookup.ok).toBe(false);
    expect(!lookup.ok && lookup.reason).toMatch(reason);
    expect(!lookup.ok && lookup.reason).toContain(sha.slice(0, 12));
  });
});
