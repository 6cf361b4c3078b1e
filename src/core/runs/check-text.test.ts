import { describe, expect, it } from 'vitest';
import { checkTextLimit, finishedReport, truncateEnd, truncateStart } from './check-text.js';
import type { Run } from './run.js';

function run(overrides: Partial<Run> = {}): Run {
  const at = new Date('2026-01-01T00:00:00Z');
  return {
    id: 'r1',
    repo: { owner: 'o', name: 'r', installationId: 1 },
    number: 1,
    isPullRequest: true,
    sha: 'a'.repeat(40),
    task: 'default',
    taskType: 'container',
    dockerfile: 'Dockerfile',
    params: {},
    requestedBy: 'alice',
    requesterKind: 'user',
    requiredRole: 'write',
    trigger: 'comment',
    approvals: [],
    manifestDigest: '',
    spec: { with: {}, network: false },
    needs: [],
    metadata: {},
    state: 'succeeded',
    checkRunId: 7,
    commentId: 9,
    exitCode: 0,
    outputCid: 'QmRoot',
    outputFiles: [
      { name: 'a.txt', cid: 'QmA', size: 2048, kind: 'file' },
      { name: 'dir', cid: 'QmD', size: 0, kind: 'directory' },
      { name: 'we|ird`', cid: 'QmW', size: 1, kind: 'file' },
    ],
    error: null,
    logTail: 'line 1\nline 2',
    workerId: null,
    leaseUntil: null,
    createdAt: at,
    queuedAt: at,
    startedAt: at,
    finishedAt: new Date(at.getTime() + 65_000),
    updatedAt: at,
    ...overrides,
  };
}

describe('finishedReport', () => {
  it('names the root CID with a gateway link, each top-level file, the exit code and the duration', () => {
    const report = finishedReport(run(), 'https://gw.example');
    expect(report).toMatchObject({ status: 'completed', conclusion: 'success', title: 'Succeeded' });
    expect(report.summary).toContain('`ipfs://QmRoot` ([gateway](https://gw.example/ipfs/QmRoot))');
    expect(report.summary).toContain('| `a.txt` | [`QmA`](https://gw.example/ipfs/QmA) | 2.0 KiB |');
    expect(report.summary).toContain('| `dir/` | [`QmD`](https://gw.example/ipfs/QmD) | directory |');
    expect(report.summary).toContain('we\\|ird\\`');
    expect(report.summary).toContain('exit code 0');
    expect(report.summary).toContain('1 min 5 s');
    expect(report.text).toBe('```text\nline 1\nline 2\n```');
  });

  it.each([
    ['failed', 'failure'],
    ['cancelled', 'cancelled'],
    ['timed_out', 'timed_out'],
  ] as const)('a %s run concludes %s and shows its error', (state, conclusion) => {
    const report = finishedReport(run({ state, error: 'it broke\nbadly', exitCode: 3 }), 'https://gw.example');
    expect(report.conclusion).toBe(conclusion);
    expect(report.summary).toContain('> it broke\n> badly');
  });

  it('keeps a log that contains backtick fences inside its own, longer fence', () => {
    const report = finishedReport(run({ logTail: 'before\n```\nafter' }), 'https://gw.example');
    expect(report.text).toBe('````text\nbefore\n```\nafter\n````');
  });

  it('cuts huge logs and output lists to GitHub\'s 65,535 characters instead of failing', () => {
    const files = Array.from({ length: 3000 }, (_, i) => ({ name: `file-${i}.bin`, cid: `Qm${'x'.repeat(44)}`, size: i, kind: 'file' as const }));
    const report = finishedReport(run({ logTail: 'y'.repeat(200_000), outputFiles: files }), 'https://gw.example');
    expect(report.summary.length).toBeLessThanOrEqual(checkTextLimit);
    expect(report.summary.endsWith('(cut to fit)')).toBe(true);
    expect(report.text!.length).toBeLessThanOrEqual(checkTextLimit);
    expect(report.text).toContain('(earlier lines cut)');
  });
});

describe('truncation', () => {
  it('leaves short texts alone', () => {
    expect(truncateEnd('abc', 10)).toBe('abc');
    expect(truncateStart('abc', 10)).toBe('abc');
  });
  it('keeps the end of a log and the start of a summary', () => {
    expect(truncateStart('0123456789'.repeat(10), 40)).toMatch(/0123456789$/);
    expect(truncateStart('0123456789'.repeat(10), 40)).toHaveLength(40);
    expect(truncateEnd('0123456789'.repeat(10), 40)).toMatch(/^0123456789/);
    expect(truncateEnd('0123456789'.repeat(10), 40)).toHaveLength(40);
  });
});
