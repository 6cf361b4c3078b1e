import { describe, expect, it } from 'vitest';
import { MAX_LISTED_FILES, NotFinishedError, provenanceRecord, provenanceRecordSchema, type ProvenanceFacts } from './provenance.js';
import type { Run } from './run.js';

const sha = 'c0ffee'.padEnd(40, '0');

function finishedRun(overrides: Partial<Run> = {}): Run {
  return {
    id: 'run-1',
    repo: { owner: 'octo-org', name: 'archive', installationId: 42 },
    number: 17,
    isPullRequest: true,
    sha,
    task: 'snapshot',
    taskType: 'container',
    dockerfile: 'Dockerfile',
    spec: { with: { dockerfile: 'Dockerfile', context: '.' }, network: false },
    needs: ['run-0'],
    params: { url: 'https://example.com/', depth: '2' },
    requestedBy: 'mona',
    requesterKind: 'user',
    requiredRole: 'write',
    trigger: 'comment',
    approvals: [{ reviewId: 5501, reviewer: 'wendy', commit: sha }],
    manifestDigest: 'sha256:' + 'd'.repeat(64),
    state: 'succeeded',
    checkRunId: 7,
    commentId: 9,
    exitCode: 0,
    outputCid: 'bafyroot',
    outputFiles: [
      { name: 'index.html', cid: 'bafyindex', size: 12, kind: 'file' },
      { name: 'pages', cid: 'bafypages', size: 0, kind: 'directory' },
    ],
    pinnedUntil: new Date('2026-02-01T00:00:00Z'),
    provenanceCid: null,
    metadata: { imageId: 'sha256:image' },
    error: null,
    logTail: 'done',
    workerId: null,
    leaseUntil: null,
    createdAt: new Date('2026-01-01T10:00:00Z'),
    queuedAt: new Date('2026-01-01T10:00:01Z'),
    startedAt: new Date('2026-01-01T10:00:05Z'),
    finishedAt: new Date('2026-01-01T10:01:05Z'),
    updatedAt: new Date('2026-01-01T10:01:05Z'),
    ...overrides,
  };
}

function facts(overrides: Partial<ProvenanceFacts> = {}): ProvenanceFacts {
  return {
    run: finishedRun(),
    image: { id: 'sha256:' + 'e'.repeat(64), baseDigest: 'busybox@sha256:' + 'f'.repeat(64) },
    inputs: { fetch: 'bafyinput' },
    pinnedUntil: new Date('2026-02-01T00:00:00Z'),
    taskMgmtVersion: '0.1.0',
    ...overrides,
  };
}

describe('provenanceRecord', () => {
  it('maps every field of DESIGN "Provenance record" from the run, its image, inputs and pin', () => {
    const record = provenanceRecord(facts());
    expect(record).toStrictEqual({
      type: 'task-mgmt/provenance',
      version: 1,
      repository: 'octo-org/archive',
      number: 17,
      sha,
      manifestDigest: 'sha256:' + 'd'.repeat(64),
      task: 'snapshot',
      taskType: 'container',
      params: { url: 'https://example.com/', depth: '2' },
      requester: { login: 'mona', how: 'comment' },
      approvals: [{ reviewId: 5501, reviewer: 'wendy', commit: sha }],
      image: { id: 'sha256:' + 'e'.repeat(64), baseDigest: 'busybox@sha256:' + 'f'.repeat(64) },
      inputs: { fetch: 'bafyinput' },
      outputs: { root: 'bafyroot', files: { 'index.html': 'bafyindex', pages: 'bafypages' } },
      exitCode: 0,
      conclusion: 'success',
      queuedAt: '2026-01-01T10:00:01.000Z',
      startedAt: '2026-01-01T10:00:05.000Z',
      finishedAt: '2026-01-01T10:01:05.000Z',
      pinnedUntil: '2026-02-01T00:00:00.000Z',
      taskMgmtVersion: '0.1.0',
    });
    expect(provenanceRecordSchema.parse(record)).toStrictEqual(record);
  });

  it.each([
    ['succeeded', 'success'],
    ['failed', 'failure'],
    ['timed_out', 'timed_out'],
    ['cancelled', 'cancelled'],
  ] as const)('a run that %s concludes %s', (state, conclusion) => {
    expect(provenanceRecord(facts({ run: finishedRun({ state }) })).conclusion).toBe(conclusion);
  });

  it('says null where nothing is known: no outputs added, no exit code, no image, no number', () => {
    const run = finishedRun({ state: 'failed', outputCid: null, outputFiles: [], exitCode: null, number: null, approvals: [] });
    const record = provenanceRecord(facts({ run, image: null, inputs: {} }));
    expect(record).toMatchObject({ outputs: null, exitCode: null, image: null, number: null, approvals: [], inputs: {}, conclusion: 'failure' });
    expect(provenanceRecordSchema.parse(record)).toStrictEqual(record);
  });

  it('keeps a reviewer that is not known as null, and an image whose base has no digest', () => {
    const run = finishedRun({ approvals: [{ reviewId: 1, reviewer: null, commit: sha }] });
    const record = provenanceRecord(facts({ run, image: { id: 'sha256:abc', baseDigest: null } }));
    expect(record.approvals).toStrictEqual([{ reviewId: 1, reviewer: null, commit: sha }]);
    expect(record.image).toStrictEqual({ id: 'sha256:abc', baseDigest: null });
  });

  it('is the same record for the same facts, whatever order the maps were built in', () => {
    const one = provenanceRecord(facts());
    const reordered = finishedRun({ params: { depth: '2', url: 'https://example.com/' }, outputFiles: [...finishedRun().outputFiles].reverse() });
    expect(provenanceRecord(facts({ run: reordered }))).toStrictEqual(one);
  });

  it('keeps names that are also property names of objects as plain keys', () => {
    const run = finishedRun({ params: { ['__proto__']: 'x', constructor: 'y' }, outputFiles: [{ name: '__proto__', cid: 'bafyodd', size: 1, kind: 'file' }] });
    const record = provenanceRecord(facts({ run }));
    expect(Object.keys(record.params)).toStrictEqual(['__proto__', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(record.outputs!.files, '__proto__')?.value).toBe('bafyodd');
    expect(Object.getPrototypeOf(record.outputs!.files)).toBe(Object.prototype);
  });

  it(`lists at most ${MAX_LISTED_FILES} top-level outputs, the first by name, and counts the rest`, () => {
    const outputFiles = Array.from({ length: MAX_LISTED_FILES + 5 }, (_, i) => ({ name: `f-${String(MAX_LISTED_FILES + 5 - i).padStart(5, '0')}`, cid: `bafy${i}`, size: 1, kind: 'file' as const }));
    const { outputs } = provenanceRecord(facts({ run: finishedRun({ outputFiles }) }));
    expect(Object.keys(outputs!.files)).toHaveLength(MAX_LISTED_FILES);
    expect(outputs!.files['f-00001']).toBeDefined();
    expect(outputs!.files[`f-${String(MAX_LISTED_FILES + 5).padStart(5, '0')}`]).toBeUndefined();
    expect(outputs!.unlisted).toBe(5);
  });

  it('refuses a run that has not finished', () => {
    expect(() => provenanceRecord(facts({ run: finishedRun({ state: 'running', finishedAt: null }) }))).toThrow(NotFinishedError);
    expect(() => provenanceRecord(facts({ run: finishedRun({ state: 'succeeded', finishedAt: null }) }))).toThrow(NotFinishedError);
  });
});
