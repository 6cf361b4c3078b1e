import MarkdownIt from 'markdown-it';
import { describe, expect, it } from 'vitest';
import { authorize } from '../policy/authorize.js';
import {
  approvalNeededReport,
  checkTextLimit,
  finishedReport,
  manifestErrorReport,
  progressReport,
  queuedReport,
  startedReport,
  truncateEnd,
  truncateStart,
} from './check-text.js';
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
    pinnedUntil: null,
    provenanceCid: null,
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
    expect(report.summary).toContain('- `a.txt` · [`QmA`](https://gw.example/ipfs/QmA) · 2.0 KiB');
    expect(report.summary).toContain('- `dir/` · [`QmD`](https://gw.example/ipfs/QmD) · directory');
    expect(report.summary).toContain('- `` we|ird` `` · [`QmW`]');
    expect(report.summary).toContain('exit code 0');
    expect(report.summary).toContain('1 min 5 s');
    expect(report.text).toBe('```text\nline 1\nline 2\n```');
    expect(report.summary).not.toContain('Pinned until');
    expect(report.summary).not.toContain('Provenance');
  });

  it.each(['succeeded', 'failed', 'timed_out', 'cancelled'] as const)('a %s run names its provenance record on a line of its own, before the outputs', (state) => {
    const cid = 'bafyreiprovenance';
    const report = finishedReport(run({ state, provenanceCid: cid, ...(state === 'succeeded' ? {} : { outputCid: null, outputFiles: [] }) }), 'https://gw.example');
    const lines = report.summary.split('\n');
    const line = lines.find((text) => text.startsWith('Provenance'));
    expect(line).toBe(`Provenance: \`${cid}\` ([record](https://gw.example/ipfs/${cid})) · \`task-mgmt verify ${cid}\` checks it and the outputs against their bytes`);
    if (state === 'succeeded') expect(lines.indexOf(line!)).toBeLessThan(lines.indexOf('### Outputs'));
  });

  it('keeps the provenance line when a long output list is cut', () => {
    const files = Array.from({ length: 3000 }, (_, i) => ({ name: `file-${i}.bin`, cid: `Qm${'x'.repeat(44)}`, size: i, kind: 'file' as const }));
    const report = finishedReport(run({ provenanceCid: 'bafyreiprovenance', outputFiles: files }), 'https://gw.example');
    expect(report.summary.endsWith('(cut to fit)')).toBe(true);
    expect(report.summary).toMatch(/^Provenance: `bafyreiprovenance`/m);
  });

  it('shows until when the outputs stay pinned, and how to keep them longer', () => {
    const report = finishedReport(run({ pinnedUntil: new Date('2026-02-14T09:30:59Z') }), 'https://gw.example');
    expect(report.summary).toContain('Pinned until 2026-02-14 09:30 UTC; `/pin r1 <duration>` keeps them longer.');
  });

  it.each([
    ['failed', 'failure'],
    ['cancelled', 'cancelled'],
    ['timed_out', 'timed_out'],
  ] as const)('a %s run concludes %s and shows its error', (state, conclusion) => {
    const report = finishedReport(run({ state, error: 'it broke\nbadly', exitCode: 3 }), 'https://gw.example');
    expect(report.conclusion).toBe(conclusion);
    expect(report.summary).toContain('> `it broke badly`');
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

/**
 * Text someone else wrote reaches a check run's Markdown summary: a manifest's fields and YAML
 * errors, a task's progress message and file names, a run's error. Rendered by a CommonMark
 * parser (with HTML and bare links on, as GitHub has them), none of it may end up outside code.
 */
describe('check-run summaries quote what others wrote', () => {
  const markdown = new MarkdownIt({ html: true, linkify: true });
  const hostile = '@octo-org/team ping @mona, see octo-org/repo#1 and #2, [x](https://evil.example) **b** <b>h</b> https://evil.example';
  const breakouts = [hostile, `\`${hostile}\``, `a\\|${hostile}`, `line\n\n# ${hostile}\n`, `\`\`\` ${hostile}`];
  /** What a reader sees outside code: no mention, reference, link, emphasis or HTML of theirs may be there. */
  function outsideCode(summary: string): string {
    return markdown.render(summary).replace(/<code>[\s\S]*?<\/code>/g, '');
  }
  function expectInert(summary: string): void {
    const shown = outsideCode(summary);
    for (const trace of ['octo-org', 'mona', 'evil.example', '#1', '#2', '<strong>b', '<b>h', '<h1>']) expect(shown, summary).not.toContain(trace);
  }

  it.each(breakouts)('a manifest error: its file, field and message (%j)', (text) => {
    const report = manifestErrorReport([{ file: text, line: 3, column: 5, field: `tasks.${text}`, message: `unknown key ${text}` }], 'a'.repeat(40));
    expectInert(report.summary);
    expect(report.summary).toContain('line 3, column 5');
  });

  it.each(breakouts)('a progress message (%j)', (text) => {
    const report = progressReport(run({ state: 'running' }), { done: 1, total: 2, message: text });
    expectInert(report.summary);
    expect(report.summary).toContain('**Progress:** 1 of 2 (50%) — `');
  });

  it.each(breakouts)('a run error and the names of the files a task wrote (%j)', (text) => {
    const report = finishedReport(
      run({ state: 'failed', error: `the build failed: ${text}`, outputFiles: [{ name: text, cid: 'QmW', size: 1, kind: 'file' }] }),
      'https://gw.example',
    );
    expectInert(report.summary);
  });

  it.each(breakouts)('a pull request file name in the approval it waits for (%j)', (text) => {
    const permission = (level: string) => ({ permission: level, roleName: null, flags: null });
    const decision = authorize({
      actor: 'writer',
      permission: permission('write'),
      pullRequest: { number: 7, headSha: 'b'.repeat(40), author: 'writer', authorPermission: permission('write'), changedTaskFiles: [text], reviews: [], reviewerPermissions: new Map() },
    });
    expect(decision).toMatchObject({ allowed: false, kind: 'approval' });
    expectInert(approvalNeededReport(decision.reason, 'b'.repeat(40)).summary);
  });

  it('names approving reviews by id, not as `#id`, which GitHub would link to the issue with that number', () => {
    const approvals = [1, 2].map((reviewId) => ({ reviewId, reviewer: 'wendy', commit: 'b'.repeat(40) }));
    for (const report of [queuedReport(run({ approvals })), startedReport(run({ approvals }))]) {
      expectInert(report.summary);
      expect(report.summary).toContain('(approving reviews `1`, `2`)');
    }
  });

  it('cuts a long summary between lines, so no quote is left open for the rest to be read as Markdown', () => {
    // Many long errors: a cut inside one would leave its span unclosed and its text live.
    for (const pad of [0, 1, 7, 500]) {
      const errors = Array.from({ length: 120 }, (_, i) => ({ file: 'task-mgmt.yml', line: i + 1, column: 1, field: 'x'.repeat(pad), message: `${'y'.repeat(900)} ${hostile}` }));
      const report = manifestErrorReport(errors, 'a'.repeat(40));
      expect(report.summary.length).toBeLessThanOrEqual(checkTextLimit);
      expect(report.summary.endsWith('\n… (cut to fit)')).toBe(true);
      expectInert(report.summary);
    }
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
  it('cuts the end at a line break when there is one', () => {
    expect(truncateEnd('first line\nsecond `quoted` line', 26)).toBe('first line\n… (cut to fit)');
  });
});
