/**
 * What every RunStore adapter must do, one describe block per section of the port (RunRecords,
 * RunLeases, WebhookInbox, AuditLog, ApprovalWaits, RunLogs, Pins, NamedLeases, Retention). Each adapter's test file calls
 * `runStoreContract` with a way to open a fresh, empty store; the suite never assumes which
 * database is underneath.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canMove, runMoves, runStates, type OutputFile, type RepoRef, type Run, type RunMove, type RunState } from '../../src/core/runs/run.js';
import type { AuditEntry, NewRun, RunStore } from '../../src/ports/run-store.js';
import { pinsContract } from './run-store-pins.contract.js';
import { checkOutboxContract } from './run-store-outbox.contract.js';
import { logsContract } from './run-store-logs.contract.js';
import { retentionContract } from './run-store-retention.contract.js';

export interface OpenedRunStore {
  store: RunStore;
  cleanup(): Promise<void>;
}

const t0 = new Date('2024-05-01T10:00:00.000Z');
/** A moment `seconds` after t0; stores must keep times to the millisecond. */
export const at = (seconds: number): Date => new Date(t0.getTime() + seconds * 1000);

const defaultRepo: RepoRef = { owner: 'octo-org', name: 'archive', installationId: 4242 };

export function newRun(overrides: Partial<NewRun> = {}): NewRun {
  return {
    id: randomUUID(),
    repo: defaultRepo,
    number: 17,
    isPullRequest: true,
    sha: 'a'.repeat(40),
    task: 'snapshot',
    taskType: 'dockerfile',
    dockerfile: 'tasks/snapshot/Dockerfile',
    params: { url: 'https://example.com/?q=1&r=ü', depth: '2' },
    requestedBy: 'mona',
    requesterKind: 'user',
    requiredRole: 'write',
    trigger: 'comment',
    commentId: 99001,
    approvals: [
      { reviewId: 5501, reviewer: 'wendy', commit: 'a'.repeat(40) },
      { reviewId: 5502, reviewer: 'octo-cat', commit: 'a'.repeat(40) },
    ],
    manifestDigest: 'sha256:' + 'd'.repeat(64),
    spec: { with: { dockerfile: 'tasks/snapshot/Dockerfile', context: '.' }, network: false, timeoutMs: 60_000, memoryBytes: 1024 ** 3 },
    needs: [],
    ...overrides,
  };
}

export function runStoreContract(name: string, open: () => Promise<OpenedRunStore>): void {
  describe(`RunStore contract: ${name}`, () => {
    let opened: OpenedRunStore;
    let store: RunStore;

    beforeEach(async () => {
      opened = await open();
      store = opened.store;
    });

    afterEach(async () => {
      await opened.cleanup();
    });

    describe('RunRecords', () => {
      describe('records', () => {
        it('round-trips every field of a new run', async () => {
          const input = newRun({ number: null, isPullRequest: false, commentId: null, trigger: 'api' });
          const created = await store.createRun(input, at(0));
          const expected = {
            ...input,
            state: 'queued',
            checkRunId: null,
            exitCode: null,
            outputCid: null,
            outputFiles: [],
            pinnedUntil: null,
            provenanceCid: null,
            metadata: {},
            error: null,
            logTail: null,
            workerId: null,
            leaseUntil: null,
            createdAt: at(0),
            queuedAt: at(0),
            startedAt: null,
            finishedAt: null,
            updatedAt: at(0),
          };
          expect(created).toStrictEqual(expected);
          const read = await store.getRun(input.id);
          expect(read).toStrictEqual(expected);
          expect(read?.createdAt).toBeInstanceOf(Date);
          expect(read?.repo).toStrictEqual(defaultRepo);
          expect(read?.params).toStrictEqual({ url: 'https://example.com/?q=1&r=ü', depth: '2' });
        });

        it('keeps pull request and comment numbers', async () => {
          const input = newRun();
          await store.createRun(input, at(0));
          const read = await store.getRun(input.id);
          expect(read).toMatchObject({ number: 17, isPullRequest: true, commentId: 99001, trigger: 'comment' });
        });

        it.each([
          ['user', 'write'],
          ['service', 'maintain'],
          ['app', 'admin'],
        ] as const)('keeps who asked (%s) and the role the request needed (%s)', async (requesterKind, requiredRole) => {
          const input = newRun({ requesterKind, requiredRole, requestedBy: requesterKind === 'service' ? 'service:0123abcd' : 'mona' });
          expect(await store.createRun(input, at(0))).toMatchObject({ requesterKind, requiredRole, requestedBy: input.requestedBy });
          expect(await store.getRun(input.id)).toMatchObject({ requesterKind, requiredRole });
        });

        it('refuses a second run with the same id', async () => {
          const input = newRun();
          await store.createRun(input, at(0));
          await expect(store.createRun(input, at(1))).rejects.toThrow();
        });

        it('returns null for an unknown id', async () => {
          expect(await store.getRun(randomUUID())).toBeNull();
        });

        it('updates the patched fields only, and updatedAt', async () => {
          const input = newRun();
          await store.createRun(input, at(0));
          const outputFiles: OutputFile[] = [
            { name: 'out/index.html', cid: 'bafyfile1', size: 1234, kind: 'file' },
            { name: 'out', cid: 'bafydir', size: 0, kind: 'directory' },
            { name: 'out/latest', cid: 'bafylink', size: 0, kind: 'symlink' },
          ];
          const updated = await store.updateRun(
            input.id,
            { checkRunId: 555, exitCode: 0, outputCid: 'bafyroot', outputFiles, provenanceCid: 'bafyprovenance', error: 'none', logTail: 'line 1\nline 2' },
            at(5),
          );
          expect(updated).toMatchObject({ checkRunId: 555, exitCode: 0, outputCid: 'bafyroot', outputFiles, provenanceCid: 'bafyprovenance', error: 'none', logTail: 'line 1\nline 2' });
          expect(updated.updatedAt).toStrictEqual(at(5));
          expect(updated.createdAt).toStrictEqual(at(0));
          expect(updated.state).toBe('queued');

          const again = await store.updateRun(input.id, { exitCode: 3 }, at(6));
          expect(again).toMatchObject({ checkRunId: 555, exitCode: 3, outputCid: 'bafyroot', outputFiles });
          expect(await store.getRun(input.id)).toStrictEqual(again);
        });

        it('keeps the latest progress of a run, as it was reported', async () => {
          const input = newRun();
          await store.createRun(input, at(0));
          expect((await store.getRun(input.id))!.progress).toBeUndefined();
          await store.updateRun(input.id, { progress: { done: 1, total: 4 } }, at(1));
          const updated = await store.updateRun(input.id, { progress: { done: 3, total: 4, message: 'page <3> "of" 4' } }, at(2));
          expect(updated.progress).toStrictEqual({ done: 3, total: 4, message: 'page <3> "of" 4' });
          expect((await store.getRun(input.id))!.progress).toStrictEqual({ done: 3, total: 4, message: 'page <3> "of" 4' });
        });

        it('can clear a field back to null', async () => {
          const input = newRun();
          await store.createRun(input, at(0));
          await store.updateRun(input.id, { error: 'boom' }, at(1));
          expect((await store.updateRun(input.id, { error: null }, at(2))).error).toBeNull();
        });

        it('rejects updating an unknown run', async () => {
          await expect(store.updateRun(randomUUID(), { exitCode: 1 }, at(0))).rejects.toThrow();
        });
      });

      describe('transition', () => {
        /** A fresh run brought to `state` by the moves a run makes to get there. */
        const runIn = async (state: RunState): Promise<Run> => {
          const created = await store.createRun(newRun(), at(0));
          const path: Record<RunState, RunMove[]> = {
            queued: [],
            running: ['claim'],
            succeeded: ['claim', 'succeed'],
            failed: ['claim', 'fail'],
            cancelled: ['cancel'],
            timed_out: ['claim', 'time_out'],
          };
          let run: Run | null = created;
          for (const move of path[state]) run = await store.transition(created.id, move, at(1), { workerId: 'w1', leaseUntil: at(31) });
          expect(run?.state).toBe(state);
          return run!;
        };

        it.each(Object.keys(runMoves) as RunMove[])('makes the move %s from its from-states only, and to its to-state', async (move) => {
          for (const state of runStates) {
            const run = await runIn(state);
            const moved = await store.transition(run.id, move, at(5));
            if (canMove(state, move)) {
              expect(moved, `${move} from ${state}`).toMatchObject({ id: run.id, state: runMoves[move].to, updatedAt: at(5) });
              expect(await store.getRun(run.id)).toStrictEqual(moved);
            } else {
              expect(moved, `${move} from ${state}`).toBeNull();
              expect(await store.getRun(run.id), `${move} from ${state}`).toStrictEqual(run);
            }
          }
        });

        it('makes a move only for the worker holding the run, when heldBy is given', async () => {
          const input = newRun();
          await store.createRun(input, at(0));
          await store.transition(input.id, 'claim', at(1), { workerId: 'w1', leaseUntil: at(31) });
          expect(await store.transition(input.id, 'succeed', at(2), { exitCode: 0 }, { heldBy: 'w2' })).toBeNull();
          expect(await store.transition(input.id, 'requeue', at(2), { workerId: null, leaseUntil: null }, { heldBy: 'w2' })).toBeNull();
          expect(await store.getRun(input.id)).toMatchObject({ state: 'running', workerId: 'w1', exitCode: null, updatedAt: at(1) });
          expect(await store.transition(input.id, 'succeed', at(3), { exitCode: 0, provenanceCid: 'bafyprovenance' }, { heldBy: 'w1' })).toMatchObject({
            state: 'succeeded',
            exitCode: 0,
            provenanceCid: 'bafyprovenance',
            finishedAt: at(3),
          });
        });

        it('keeps a worker that lost its run from ending it after another worker took it', async () => {
          const input = newRun();
          await store.createRun(input, at(0));
          await store.transition(input.id, 'claim', at(1), { workerId: 'w1', leaseUntil: at(31) });
          // w1's lease ran out: the run went back to the queue and w2 took it.
          await store.transition(input.id, 'requeue', at(40), { workerId: null, leaseUntil: null }, { heldBy: 'w1' });
          await store.transition(input.id, 'claim', at(41), { workerId: 'w2', leaseUntil: at(71) });
          expect(await store.transition(input.id, 'fail', at(42), { error: 'late' }, { heldBy: 'w1' })).toBeNull();
          expect(await store.getRun(input.id)).toMatchObject({ state: 'running', workerId: 'w2', error: null });
        });

        it('never matches heldBy on a run no worker holds', async () => {
          const input = newRun();
          await store.createRun(input, at(0));
          expect(await store.transition(input.id, 'cancel', at(1), {}, { heldBy: 'w1' })).toBeNull();
          await store.transition(input.id, 'claim', at(2));
          expect(await store.transition(input.id, 'fail', at(3), {}, { heldBy: 'w1' })).toBeNull();
          expect((await store.getRun(input.id))?.state).toBe('running');
        });

        it('moves a run only from one of the move’s states', async () => {
          const input = newRun();
          await store.createRun(input, at(0));
          expect(await store.transition(input.id, 'succeed', at(1))).toBeNull();
          expect((await store.getRun(input.id))?.state).toBe('queued');
          const running = await store.transition(input.id, 'claim', at(2));
          expect(running?.state).toBe('running');
          expect(await store.transition(input.id, 'claim', at(3))).toBeNull();
        });

        it('returns null for an unknown run', async () => {
          expect(await store.transition(randomUUID(), 'claim', at(0))).toBeNull();
        });

        it('lets exactly one of two concurrent takers win', async () => {
          const input = newRun();
          await store.createRun(input, at(0));
          const results = await Promise.all([
            store.transition(input.id, 'claim', at(1), { workerId: 'w1', leaseUntil: at(31) }),
            store.transition(input.id, 'claim', at(1), { workerId: 'w2', leaseUntil: at(31) }),
          ]);
          const winners = results.filter((run) => run !== null);
          expect(winners).toHaveLength(1);
          expect((await store.getRun(input.id))?.workerId).toBe(winners[0]?.workerId);
        });

        it('lets exactly one of many concurrent takers win across many runs', async () => {
          const runs = Array.from({ length: 10 }, () => newRun());
          for (const run of runs) await store.createRun(run, at(0));
          const attempts = runs.flatMap((run) => ['w1', 'w2', 'w3'].map((workerId) => store.transition(run.id, 'claim', at(1), { workerId })));
          const results = await Promise.all(attempts);
          for (const run of runs) {
            expect(results.filter((r) => r?.id === run.id)).toHaveLength(1);
          }
        });

        it('sets startedAt, the worker and its lease when a run starts', async () => {
          const input = newRun();
          await store.createRun(input, at(0));
          const running = await store.transition(input.id, 'claim', at(2), { workerId: 'w1', leaseUntil: at(32) });
          expect(running).toMatchObject({ state: 'running', startedAt: at(2), updatedAt: at(2), queuedAt: at(0), finishedAt: null, workerId: 'w1', leaseUntil: at(32) });
          expect(await store.getRun(input.id)).toStrictEqual(running);
        });

        it.each(['succeed', 'fail', 'cancel', 'time_out', 'abandon'] as const)('sets finishedAt and clears the worker and lease on %s', async (move) => {
          const input = newRun();
          await store.createRun(input, at(0));
          await store.transition(input.id, 'claim', at(2), { workerId: 'w1', leaseUntil: at(32) });
          const done = await store.transition(input.id, move, at(9), { exitCode: 7, error: 'why', outputCid: 'bafyout' }, { heldBy: 'w1' });
          expect(done).toMatchObject({
            state: runMoves[move].to,
            startedAt: at(2),
            finishedAt: at(9),
            updatedAt: at(9),
            workerId: null,
            leaseUntil: null,
            exitCode: 7,
            error: 'why',
            outputCid: 'bafyout',
          });
          expect(await store.getRun(input.id)).toStrictEqual(done);
        });

        it('clears the worker even if the patch names one on a final state', async () => {
          const input = newRun();
          await store.createRun(input, at(0));
          await store.transition(input.id, 'claim', at(1), { workerId: 'w1', leaseUntil: at(31) });
          const done = await store.transition(input.id, 'fail', at(2), { workerId: 'w1', leaseUntil: at(60) });
          expect(done).toMatchObject({ workerId: null, leaseUntil: null });
        });

        it('resets queuedAt and startedAt when a run is handed back to the queue', async () => {
          const input = newRun();
          await store.createRun(input, at(0));
          await store.transition(input.id, 'claim', at(2), { workerId: 'w1', leaseUntil: at(32) });
          const requeued = await store.transition(input.id, 'requeue', at(5), { workerId: null, leaseUntil: null });
          expect(requeued).toMatchObject({ state: 'queued', queuedAt: at(5), startedAt: null, finishedAt: null, workerId: null, leaseUntil: null, createdAt: at(0) });
          const again = await store.transition(input.id, 'claim', at(7), { workerId: 'w2', leaseUntil: at(37) });
          expect(again).toMatchObject({ startedAt: at(7), workerId: 'w2' });
        });

        it.each(['cancel', 'skip'] as const)('ends a queued run straight away on %s', async (move) => {
          const input = newRun();
          await store.createRun(input, at(0));
          const ended = await store.transition(input.id, move, at(3), { error: 'why' });
          expect(ended).toMatchObject({ state: 'cancelled', startedAt: null, finishedAt: at(3), error: 'why' });
        });
      });

      describe('listing', () => {
        it('lists runs newest first, filtered by state and repo, up to the limit', async () => {
          const other: RepoRef = { owner: 'octo-org', name: 'other', installationId: 4242 };
          const r1 = newRun();
          const r2 = newRun({ repo: other });
          const r3 = newRun();
          const r4 = newRun({ repo: other });
          await store.createRun(r1, at(1));
          await store.createRun(r2, at(2));
          await store.createRun(r3, at(3));
          await store.createRun(r4, at(4));
          await store.transition(r3.id, 'claim', at(5));

          const ids = async (query: Parameters<RunStore['listRuns']>[0]) => (await store.listRuns(query)).map((r) => r.id);
          expect(await ids({})).toStrictEqual([r4.id, r3.id, r2.id, r1.id]);
          expect(await ids({ limit: 2 })).toStrictEqual([r4.id, r3.id]);
          expect(await ids({ state: 'queued' })).toStrictEqual([r4.id, r2.id, r1.id]);
          expect(await ids({ state: 'running' })).toStrictEqual([r3.id]);
          expect(await ids({ repo: 'octo-org/archive' })).toStrictEqual([r3.id, r1.id]);
          expect(await ids({ repo: 'octo-org/other', state: 'queued', limit: 1 })).toStrictEqual([r4.id]);
          expect(await ids({ repo: 'octo-org/missing' })).toStrictEqual([]);
          expect(await ids({ state: 'succeeded' })).toStrictEqual([]);
        });

        it('lists queued runs oldest queuedAt first, up to the limit', async () => {
          const r1 = newRun();
          const r2 = newRun();
          const r3 = newRun();
          const r4 = newRun();
          await store.createRun(r1, at(1));
          await store.createRun(r2, at(2));
          await store.createRun(r3, at(3));
          await store.createRun(r4, at(4));
          // r1 runs and comes back: it joins the end of the line.
          await store.transition(r1.id, 'claim', at(5));
          await store.transition(r1.id, 'requeue', at(6));
          // r3 is taken and stays running.
          await store.transition(r3.id, 'claim', at(7));

          expect((await store.listQueued(10)).map((r) => r.id)).toStrictEqual([r2.id, r4.id, r1.id]);
          expect((await store.listQueued(2)).map((r) => r.id)).toStrictEqual([r2.id, r4.id]);
        });
      });
    });

    describe('RunLeases', () => {
      it('claims a queued run only while the repository has fewer than the limit running', async () => {
        const runs = [newRun(), newRun(), newRun(), newRun({ repo: { owner: 'octo-org', name: 'other', installationId: 4242 } })];
        for (const run of runs) await store.createRun(run, at(0));
        const claim = { workerId: 'w1', leaseUntil: at(60), maxRunningInRepo: 2 };
        expect(await store.claimRun(runs[0]!.id, claim, at(1))).toMatchObject({ state: 'running', workerId: 'w1', startedAt: at(1) });
        expect(await store.claimRun(runs[1]!.id, claim, at(1))).toMatchObject({ state: 'running' });
        expect(await store.claimRun(runs[2]!.id, claim, at(1))).toBe('busy');
        expect((await store.getRun(runs[2]!.id))!.state).toBe('queued');
        expect(await store.claimRun(runs[3]!.id, claim, at(1))).toMatchObject({ state: 'running' });
        expect(await store.claimRun(runs[0]!.id, claim, at(1))).toBeNull();
        await store.transition(runs[0]!.id, 'succeed', at(2));
        expect(await store.claimRun(runs[2]!.id, claim, at(3))).toMatchObject({ state: 'running' });
        expect(await store.claimRun(randomUUID(), claim, at(3))).toBeNull();
      });

      it("holds a run to its own concurrency when that is lower than the worker's limit", async () => {
        const repo = { ...defaultRepo, name: 'own-limit' };
        const spec = { with: {}, network: false, concurrency: 1 };
        const [first, second, roomy] = [newRun({ repo, spec }), newRun({ repo, spec }), newRun({ repo, spec: { with: {}, network: false, concurrency: 3 } })];
        for (const run of [first!, second!, roomy!]) await store.createRun(run, at(0));
        const claim = { workerId: 'w1', leaseUntil: at(60), maxRunningInRepo: 5 };
        expect(await store.claimRun(first!.id, claim, at(1))).toMatchObject({ state: 'running' });
        expect(await store.claimRun(second!.id, claim, at(1))).toBe('busy');
        expect(await store.claimRun(second!.id, { ...claim, onlyWithoutNeeds: true }, at(1))).toBe('busy');
        expect(await store.claimRun(roomy!.id, claim, at(1))).toMatchObject({ state: 'running' });
        // The worker's limit still applies when the run's own is higher.
        expect(await store.claimRun(second!.id, { ...claim, maxRunningInRepo: 2 }, at(1))).toBe('busy');
      });

      it('with onlyWithoutNeeds, leaves a run that needs other tasks queued for a caller that checks them', async () => {
        const needed = newRun();
        const needing = newRun({ needs: [needed.id] });
        for (const run of [needed, needing]) await store.createRun(run, at(0));
        const claim = { workerId: 'w1', leaseUntil: at(60), maxRunningInRepo: 5, onlyWithoutNeeds: true };
        expect(await store.claimRun(needing.id, claim, at(1))).toBeNull();
        expect((await store.getRun(needing.id))!.state).toBe('queued');
        expect(await store.claimRun(needed.id, claim, at(1))).toMatchObject({ state: 'running', workerId: 'w1' });
        expect(await store.claimRun(needing.id, { ...claim, onlyWithoutNeeds: false }, at(2))).toMatchObject({ state: 'running' });
      });

      it('never lets concurrent claims exceed the limit', async () => {
        // Several rounds, each of claims sent together, so a store that counts without the
        // repository's lock is caught even when one round happens to run them one by one.
        for (let round = 0; round < 5; round += 1) {
          const repo = { ...defaultRepo, name: `limits-${round}` };
          const runs = Array.from({ length: 8 }, () => newRun({ repo }));
          for (const run of runs) await store.createRun(run, at(0));
          const results = await Promise.all(runs.map((run, i) => store.claimRun(run.id, { workerId: `w${i}`, leaseUntil: at(60), maxRunningInRepo: 2 }, at(1))));
          expect(results.filter((r) => r !== 'busy' && r !== null)).toHaveLength(2);
          expect(results.filter((r) => r === 'busy')).toHaveLength(6);
          expect(await store.listRuns({ repo: `${repo.owner}/${repo.name}`, state: 'running' })).toHaveLength(2);
        }
      });

      it('renews the lease for the worker holding the run only', async () => {
        const input = newRun();
        await store.createRun(input, at(0));
        await store.transition(input.id, 'claim', at(1), { workerId: 'w1', leaseUntil: at(31) });
        expect(await store.renewLease(input.id, 'w1', at(61))).toBe(true);
        expect((await store.getRun(input.id))?.leaseUntil).toStrictEqual(at(61));
        expect(await store.renewLease(input.id, 'w2', at(91))).toBe(false);
        expect((await store.getRun(input.id))?.leaseUntil).toStrictEqual(at(61));
      });

      it('does not renew the lease of a finished or queued run', async () => {
        const input = newRun();
        await store.createRun(input, at(0));
        expect(await store.renewLease(input.id, 'w1', at(31))).toBe(false);
        await store.transition(input.id, 'claim', at(1), { workerId: 'w1', leaseUntil: at(31) });
        await store.transition(input.id, 'succeed', at(2));
        expect(await store.renewLease(input.id, 'w1', at(61))).toBe(false);
        expect((await store.getRun(input.id))?.leaseUntil).toBeNull();
      });

      it('does not renew the lease of an unknown run', async () => {
        expect(await store.renewLease(randomUUID(), 'w1', at(31))).toBe(false);
      });

      it('lists running runs whose lease ended', async () => {
        const expired = newRun();
        const live = newRun();
        const queued = newRun();
        const finished = newRun();
        for (const run of [expired, live, queued, finished]) await store.createRun(run, at(0));
        await store.transition(expired.id, 'claim', at(1), { workerId: 'w1', leaseUntil: at(10) });
        await store.transition(live.id, 'claim', at(1), { workerId: 'w2', leaseUntil: at(100) });
        await store.transition(finished.id, 'claim', at(1), { workerId: 'w3', leaseUntil: at(10) });
        await store.transition(finished.id, 'fail', at(2));

        expect((await store.listExpiredLeases(at(50))).map((r) => r.id)).toStrictEqual([expired.id]);
        expect(await store.listExpiredLeases(at(5))).toStrictEqual([]);
        const later = (await store.listExpiredLeases(at(200))).map((r) => r.id).sort();
        expect(later).toStrictEqual([expired.id, live.id].sort());

        // A renewed lease is no longer expired.
        await store.renewLease(expired.id, 'w1', at(300));
        expect((await store.listExpiredLeases(at(200))).map((r) => r.id)).toStrictEqual([live.id]);
      });

      it('treats a running run without a lease as expired', async () => {
        const input = newRun();
        await store.createRun(input, at(0));
        await store.transition(input.id, 'claim', at(1));
        expect((await store.listExpiredLeases(at(2))).map((r) => r.id)).toStrictEqual([input.id]);
      });
    });

    describe('WebhookInbox', () => {
      it('records a delivery once and reports the redelivery', async () => {
        const delivery = { id: randomUUID(), event: 'issue_comment', payload: { action: 'created', n: 1 }, receivedAt: at(0) };
        expect(await store.recordDelivery(delivery)).toBe(true);
        expect(await store.recordDelivery({ ...delivery, receivedAt: at(9), payload: { other: true } })).toBe(false);
        const pending = await store.pendingDeliveries(10);
        expect(pending).toStrictEqual([delivery]);
      });

      it('lists pending deliveries oldest first and forgets handled ones', async () => {
        const d1 = { id: randomUUID(), event: 'issue_comment', payload: { i: 1 }, receivedAt: at(3) };
        const d2 = { id: randomUUID(), event: 'pull_request', payload: { i: 2 }, receivedAt: at(1) };
        const d3 = { id: randomUUID(), event: 'check_run', payload: [1, 'two', null], receivedAt: at(2) };
        for (const d of [d1, d2, d3]) await store.recordDelivery(d);

        expect(await store.pendingDeliveries(10)).toStrictEqual([d2, d3, d1]);
        expect((await store.pendingDeliveries(2)).map((d) => d.id)).toStrictEqual([d2.id, d3.id]);

        await store.markDeliveryHandled(d3.id, at(4));
        expect((await store.pendingDeliveries(10)).map((d) => d.id)).toStrictEqual([d2.id, d1.id]);
        // Handled is still seen: a redelivery after handling is not recorded again.
        expect(await store.recordDelivery(d3)).toBe(false);
        expect((await store.pendingDeliveries(10)).map((d) => d.id)).toStrictEqual([d2.id, d1.id]);
      });

      it('ignores marking an unknown delivery as handled', async () => {
        await expect(store.markDeliveryHandled(randomUUID(), at(0))).resolves.toBeUndefined();
      });
    });

    describe('AuditLog', () => {
      it('lists a repository’s decisions in the order they were made', async () => {
        const runId = randomUUID();
        const entries: AuditEntry[] = [
          { at: at(1), repo: 'octo-org/archive', number: 17, actor: 'mona', action: 'run snapshot', allowed: true, reason: 'collaborator with write access', runId },
          { at: at(1), repo: 'octo-org/archive', number: 17, actor: 'eve', action: 'run snapshot', allowed: false, reason: 'not a collaborator', runId: null },
          { at: at(2), repo: 'octo-org/other', number: null, actor: 'mona', action: 'cancel', allowed: true, reason: 'author', runId: null },
          { at: at(0), repo: 'octo-org/archive', number: null, actor: 'api', action: 'rerun', allowed: true, reason: 'token', runId },
        ];
        for (const entry of entries) await store.audit(entry);
        expect(await store.listAudit('octo-org/archive')).toStrictEqual([entries[0], entries[1], entries[3]]);
        expect(await store.listAudit('octo-org/other')).toStrictEqual([entries[2]]);
        expect(await store.listAudit('octo-org/none')).toStrictEqual([]);
      });

      it('counts an actor\'s commands since a time', async () => {
        const entry = (actor: string, action: string, seconds: number): AuditEntry => ({
          at: at(seconds), repo: 'octo-org/archive', number: 1, actor, action, allowed: true, reason: 'r', runId: null,
        });
        for (const e of [entry('mona', 'run', 1), entry('mona', 'run', 5), entry('mona', 'cancel', 6), entry('mona', 'help', 7), entry('eve', 'run', 6)]) await store.audit(e);
        expect(await store.countAudit({ actor: 'mona', actions: ['run', 'cancel'], since: at(2) })).toBe(2);
        expect(await store.countAudit({ actor: 'mona', actions: ['run'], since: at(0) })).toBe(2);
        expect(await store.countAudit({ actor: 'nobody', actions: ['run'], since: at(0) })).toBe(0);
      });

      it('admits a command only while the actor is under the limit, counting and recording in one step', async () => {
        const entry = (actor: string, seconds: number, allowed = true): AuditEntry => ({
          at: at(seconds), repo: 'octo-org/archive', number: 1, actor, action: 'command', allowed, reason: allowed ? 'admitted' : 'over the limit', runId: null,
        });
        const admit = (actor: string, seconds: number, limit = 2) =>
          store.admitCommand({ actor, actions: ['command'], since: at(seconds - 60), limit, entry: entry(actor, seconds), refusal: entry(actor, seconds, false) });
        expect(await admit('mona', 1)).toStrictEqual({ admitted: true });
        expect(await admit('mona', 2)).toStrictEqual({ admitted: true });
        expect(await admit('eve', 3)).toStrictEqual({ admitted: true });
        // Past the limit: refused, the refusal recorded, and when the oldest counted entries were made.
        expect(await admit('mona', 3)).toStrictEqual({ admitted: false, count: 2, refused: 0, newest: [at(2), at(1)] });
        expect(await admit('mona', 4)).toStrictEqual({ admitted: false, count: 3, refused: 1, newest: [at(3), at(2)] });
        expect(await admit('mona', 63)).toStrictEqual({ admitted: false, count: 2, refused: 2, newest: [at(4), at(3)] });
        expect(await admit('mona', 65)).toStrictEqual({ admitted: true });
        const mine = (await store.listAudit('octo-org/archive')).filter((e) => e.actor === 'mona');
        expect(mine.map((e) => e.allowed)).toStrictEqual([true, true, false, false, false, true]);
      });

      it('admits exactly the limit of 20 concurrent commands', async () => {
        const actor = `racer-${randomUUID().slice(0, 8)}`;
        const entry = (allowed: boolean): AuditEntry => ({ at: at(10), repo: 'octo-org/race', number: 1, actor, action: 'command', allowed, reason: 'r', runId: null });
        const outcomes = await Promise.all(
          Array.from({ length: 20 }, () => store.admitCommand({ actor, actions: ['command'], since: at(0), limit: 5, entry: entry(true), refusal: entry(false) })),
        );
        expect(outcomes.filter((o) => o.admitted)).toHaveLength(5);
        const recorded = (await store.listAudit('octo-org/race')).filter((e) => e.actor === actor);
        expect(recorded.filter((e) => e.allowed)).toHaveLength(5);
        expect(recorded.filter((e) => !e.allowed)).toHaveLength(15);
      });
    });

    describe('ApprovalWaits', () => {
      it('keeps approval waits of a pull request until they are taken', async () => {
        const wait = { repo: 'octo-org/archive', installationId: 4242, number: 17, sha: 'b'.repeat(40), task: 'default', checkRunId: 777, requestedBy: 'mona', createdAt: at(1) };
        await store.recordApprovalWait(wait);
        await store.recordApprovalWait({ ...wait, number: 18, checkRunId: 778 });
        expect(await store.takeApprovalWaits('octo-org/archive', 17)).toStrictEqual([wait]);
        expect(await store.takeApprovalWaits('octo-org/archive', 17)).toStrictEqual([]);
        expect(await store.takeApprovalWaits('octo-org/archive', 18)).toHaveLength(1);
      });
    });

    pinsContract(() => store);
    logsContract(() => store);
    retentionContract(() => store);
    checkOutboxContract(() => store);
  });
}
