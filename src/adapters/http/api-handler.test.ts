/** The JSON API on a real HTTP server, with a real SQLite run store and a stand-in for the use cases. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { at, newRun } from '../../../test/contracts/run-store.contract.js';
import { MemoryRepoHost } from '../local/memory-repo-host.js';
import { SqliteRunStore } from '../store/sqlite-run-store.js';
import { ReadAccess } from '../../core/run-service/run-service.js';
import type { RepoRef } from '../../core/runs/run.js';
import { createApiHandler } from './api-handler.js';
import type { CreateRunRequest } from './api-schemas.js';
import type { ApiActor } from './http-io.js';
import type { CancelOutcome, CreateOutcome, RunUseCases } from './run-operations.js';
import type { PinOutcome } from '../../core/run-service/run-service.js';

// ajv-formats is CommonJS; under NodeNext its default export arrives wrapped.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (ajv: Ajv2020) => Ajv2020;

const token = 'service-token-for-tests';
const auth = { authorization: `Bearer ${token}` };
const archive: RepoRef = { owner: 'octo-org', name: 'archive', installationId: 4242 };
const other: RepoRef = { owner: 'octo-org', name: 'other', installationId: 4242 };

/** Stand-in for the use cases behind create and cancel, recording what it was asked. */
function fakeRuns(store: SqliteRunStore): RunUseCases & { created: { input: CreateRunRequest; actor: ApiActor }[] } {
  const created: { input: CreateRunRequest; actor: ApiActor }[] = [];
  return {
    created,
    async create(input, actor): Promise<CreateOutcome> {
      created.push({ input, actor });
      if (input.repo === 'octo-org/missing') return { kind: 'not_found', reason: 'the App is not installed on octo-org/missing' };
      if (input.task === 'forbidden-task') return { kind: 'refused', reason: 'there is no task `forbidden-task`' };
      const run = await store.createRun(newRun({ trigger: 'api', requestedBy: actor.name, number: null, isPullRequest: false, commentId: null, params: input.params ?? {} }), at(100));
      return { kind: 'queued', runs: [run] };
    },
    async cancel(runId): Promise<CancelOutcome> {
      const run = await store.getRun(runId);
      if (!run) return { kind: 'not_found', reason: `there is no run \`${runId}\`` };
      const cancelled = await store.transition(runId, 'cancel', at(200), { error: 'cancelled through the API' });
      return cancelled ? { kind: 'cancelled', run: cancelled } : { kind: 'already_final', run };
    },
    /** The run service decides /pin (its own tests); here each of its answers, by the run asked for. */
    async pin(runId, durationMs): Promise<PinOutcome> {
      const run = await store.getRun(runId);
      if (!run) return { kind: 'refused', code: 'not_found', reason: `there is no run \`${runId}\`` };
      if (durationMs > 365 * 86_400_000) return { kind: 'refused', code: 'params', reason: '`/pin` asks for 400 d, and this deployment pins outputs for at most 365 d (PIN_TTL_MAX).' };
      if (run.state === 'queued') return { kind: 'refused', code: 'nothing_to_do', reason: `run \`${runId}\` has not finished; its outputs are pinned once they are added.` };
      const pinnedUntil = new Date(at(300).getTime() + durationMs);
      return { kind: 'pinned', run: { ...run, pinnedUntil }, pinnedUntil, extended: true };
    },
  };
}

describe('JSON API', () => {
  let store: SqliteRunStore;
  let server: Server;
  let base: string;
  let runs: ReturnType<typeof fakeRuns>;

  beforeEach(async () => {
    store = await SqliteRunStore.open(':memory:');
    runs = fakeRuns(store);
    const handler = createApiHandler({ store, tokens: ['another-token', token], runs, reads: new ReadAccess({ hostFor: async () => new MemoryRepoHost(), now: () => new Date() }), log: pino({ level: 'silent' }), pollMs: 20, heartbeatMs: 50 });
    server = createServer((req, res) => {
      void handler(req, res).then((handled) => {
        if (!handled) res.writeHead(404, { 'content-type': 'text/plain' }).end('not the API');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await store.close();
  });

  const get = (path: string, headers: Record<string, string> = auth) => fetch(`${base}${path}`, { headers });
  /** Appends to a run's log in the store, as a worker does; a small `maxBytes` makes the store cut. */
  const appendLog = async (runId: string, text: string, maxBytes = 1024 * 1024) => {
    const { size } = await store.logInfo(runId);
    await store.appendLog(runId, { offset: size, bytes: Buffer.from(text) }, maxBytes);
  };
  const post = (path: string, body: string, headers: Record<string, string> = auth) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

  describe('authentication', () => {
    it.each([
      ['no header', {}],
      ['a wrong token', { authorization: 'Bearer not-a-token' }],
      ['a token of another scheme', { authorization: `Basic ${token}` }],
      ['a prefix of the token', { authorization: `Bearer ${token.slice(0, -1)}` }],
    ])('answers 401 with code unauthorized for %s', async (_name, headers: Record<string, string>) => {
      for (const path of ['/api/runs', '/api/runs/some-id', '/api/runs/some-id/logs']) {
        const response = await get(path, headers);
        expect(response.status).toBe(401);
        expect(response.headers.get('www-authenticate')).toBe('Bearer');
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
      }
      const created = await post('/api/runs', JSON.stringify({ repo: 'octo-org/archive' }), headers);
      expect(created.status).toBe(401);
      expect(runs.created).toHaveLength(0);
    });

    it('accepts every configured token and leaves other paths to other handlers', async () => {
      expect((await get('/api/runs', { authorization: 'Bearer another-token' })).status).toBe(200);
      expect((await get('/api/runs')).status).toBe(200);
      const webhooks = await post('/api/github/webhooks', '{}', {});
      expect(webhooks.status).toBe(404);
      expect(await webhooks.text()).toBe('not the API');
    });
  });

  describe('listing', () => {
    it('lists newest first, filters by state and repository, and pages with a cursor', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 7; i += 1) {
        const run = await store.createRun(newRun({ repo: i % 2 === 0 ? archive : other }), at(i));
        ids.push(run.id);
      }
      // Two runs created in the same millisecond are ordered by id, and paging must not lose either.
      const twinA = await store.createRun(newRun({ id: 'twin-a' }), at(10));
      const twinB = await store.createRun(newRun({ id: 'twin-b' }), at(10));
      await store.transition(ids[0]!, 'claim', at(20));
      await store.transition(ids[0]!, 'succeed', at(21));
      const newestFirst = [twinB.id, twinA.id, ...[...ids].reverse()];

      const all = (await (await get('/api/runs')).json()) as { runs: { id: string; created_at: string }[]; next_cursor: string | null };
      expect(all.runs.map((run) => run.id)).toStrictEqual(newestFirst);
      expect(all.next_cursor).toBeNull();
      expect(all.runs[0]!.created_at).toBe(at(10).toISOString());

      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: string = `/api/runs?limit=4${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const page = (await (await get(query)).json()) as { runs: { id: string }[]; next_cursor: string | null };
        expect(page.runs.length).toBeLessThanOrEqual(4);
        seen.push(...page.runs.map((run) => run.id));
        cursor = page.next_cursor;
        pages += 1;
      } while (cursor !== null && pages < 10);
      expect(seen).toStrictEqual(newestFirst);
      expect(pages).toBe(3);

      const succeeded = (await (await get('/api/runs?state=succeeded')).json()) as { runs: { id: string; state: string }[] };
      expect(succeeded.runs.map((run) => run.id)).toStrictEqual([ids[0]]);
      const ofOther = (await (await get('/api/runs?repo=octo-org/other&state=queued')).json()) as { runs: { repo: string }[] };
      expect(ofOther.runs).toHaveLength(3);
      expect(new Set(ofOther.runs.map((run) => run.repo))).toStrictEqual(new Set(['octo-org/other']));
      // Empty parameters count as unset.
      expect(((await (await get('/api/runs?state=&repo=')).json()) as { runs: unknown[] }).runs).toHaveLength(9);
    });

    it.each([
      ['state=done', 'state'],
      ['limit=0', 'limit'],
      ['limit=1000', 'limit'],
      ['repo=no-slash', 'repo'],
      ['cursor=bm90LWEtY3Vyc29y', 'cursor'],
      ['colour=blue', 'colour'],
    ])('refuses ?%s naming the field', async (query, field) => {
      const response = await get(`/api/runs?${query}`);
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: { code: string; field: string; message: string } };
      expect(body.error.code).toBe('invalid_request');
      expect(body.error.field).toBe(field);
      expect(body.error.message).toContain(field);
    });
  });

  describe('one run', () => {
    it('answers the run as JSON with ISO dates', async () => {
      const run = await store.createRun(newRun({ requestedBy: 'service:0123abcd', requesterKind: 'service', requiredRole: 'maintain' }), at(1));
      const response = await get(`/api/runs/${run.id}`);
      expect(response.status).toBe(200);
      const body = (await response.json()) as Record<string, unknown>;
      expect(body).toMatchObject({
        id: run.id,
        repo: 'octo-org/archive',
        installation_id: 4242,
        requested_by: 'service:0123abcd',
        requester_kind: 'service',
        required_role: 'maintain',
        state: 'queued',
        created_at: at(1).toISOString(),
        started_at: null,
        log_url: `/api/runs/${run.id}/logs`,
      });
    });

    it('answers 404 with code not_found for an unknown run, its logs and its events', async () => {
      for (const path of ['/api/runs/nope', '/api/runs/nope/logs', '/api/runs/nope/events', '/api/runs/nope/whatever']) {
        const response = await get(path);
        expect(response.status, path).toBe(404);
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe('not_found');
      }
      const cancel = await post('/api/runs/nope/cancel', '');
      expect(cancel.status).toBe(404);
      expect(((await cancel.json()) as { error: { code: string } }).error.code).toBe('not_found');
    });

    it('cancels a queued run, and answers 409 conflict once it has ended', async () => {
      const run = await store.createRun(newRun(), at(1));
      const first = await post(`/api/runs/${run.id}/cancel`, '');
      expect(first.status).toBe(200);
      expect(((await first.json()) as { run: { state: string } }).run.state).toBe('cancelled');
      const again = await post(`/api/runs/${run.id}/cancel`, '');
      expect(again.status).toBe(409);
      expect(((await again.json()) as { error: { code: string } }).error.code).toBe('conflict');
    });

    it('pins a run longer: 200 with the new expiry, 400 naming `duration`, 409 with nothing pinned, 404 for no run', async () => {
      const queued = await store.createRun(newRun(), at(1));
      const run = await store.createRun(newRun(), at(1));
      await store.transition(run.id, 'claim', at(2), { workerId: 'w' });
      await store.transition(run.id, 'succeed', at(3));
      const pinned = await post(`/api/runs/${run.id}/pin`, JSON.stringify({ duration: '90d' }));
      expect(pinned.status).toBe(200);
      const until = new Date(at(300).getTime() + 90 * 86_400_000).toISOString();
      expect(await pinned.json()).toMatchObject({ pinned_until: until, extended: true, run: { id: run.id, pinned_until: until } });
      for (const [body, message] of [
        [{ duration: 'forever' }, /is not a duration/],
        [{ duration: '400d' }, /at most 365 d \(PIN_TTL_MAX\)/],
        [{}, /duration/],
        [{ duration: '9d', extra: 1 }, /unknown field `extra`/],
      ] as const) {
        const refused = await post(`/api/runs/${run.id}/pin`, JSON.stringify(body));
        expect(refused.status, JSON.stringify(body)).toBe(400);
        expect(await refused.json()).toMatchObject({ error: { code: 'invalid_request', message: expect.stringMatching(message) } });
      }
      const notYet = await post(`/api/runs/${queued.id}/pin`, JSON.stringify({ duration: '9d' }));
      expect(notYet.status).toBe(409);
      expect(((await notYet.json()) as { error: { code: string } }).error.code).toBe('conflict');
      expect((await post('/api/runs/nope/pin', JSON.stringify({ duration: '9d' }))).status).toBe(404);
    });

    it('refuses a method the path does not offer', async () => {
      const run = await store.createRun(newRun(), at(1));
      const response = await fetch(`${base}/api/runs/${run.id}`, { method: 'DELETE', headers: auth });
      expect(response.status).toBe(405);
    });
  });

  describe('logs', () => {
    it('serves the stored log as text, and an empty log before the run wrote one', async () => {
      const run = await store.createRun(newRun(), at(1));
      const empty = await get(`/api/runs/${run.id}/logs`);
      expect(empty.status).toBe(200);
      expect(await empty.text()).toBe('');
      await appendLog(run.id, 'step 1\n');
      await appendLog(run.id, 'step 2 ✓\n');
      const response = await get(`/api/runs/${run.id}/logs`);
      expect(response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      expect(response.headers.get('x-log-size')).toBe('18');
      expect(await response.text()).toBe('step 1\nstep 2 ✓\n');
    });

    it('serves from a stream offset, and refuses one that is not a number', async () => {
      const run = await store.createRun(newRun(), at(1));
      await appendLog(run.id, 'step 1\nstep 2\n');
      expect(await (await get(`/api/runs/${run.id}/logs?offset=7`)).text()).toBe('step 2\n');
      expect(await (await get(`/api/runs/${run.id}/logs?offset=99`)).text()).toBe('');
      const refused = await get(`/api/runs/${run.id}/logs?offset=-1`);
      expect(refused.status).toBe(400);
      expect(await refused.json()).toMatchObject({ error: { code: 'invalid_request', message: '`offset` must be a byte offset: a whole number from 0' } });
    });

    it('says where the store cut the log, and a reader whose offset was cut goes on after it', async () => {
      const run = await store.createRun(newRun(), at(1));
      for (const line of ['head 1\n', 'head 2\n', 'middle 1\n', 'middle 2\n', 'tail 1\n', 'tail 2\n']) await appendLog(run.id, line, 28);
      expect(await (await get(`/api/runs/${run.id}/logs`)).text()).toBe('head 1\nhead 2\ntask-mgmt: … 18 bytes of log cut here (LOG_MAX_BYTES)\ntail 1\ntail 2\n');
      expect(await (await get(`/api/runs/${run.id}/logs?offset=20`)).text()).toBe('task-mgmt: … 12 bytes of log cut here (LOG_MAX_BYTES)\ntail 1\ntail 2\n');
    });

    it('streams a log far larger than one read, in order', async () => {
      const run = await store.createRun(newRun(), at(1));
      const chunk = (n: number) => `${String(n).padStart(6, '0')} ${'x'.repeat(64 * 1024 - 8)}\n`;
      for (let n = 0; n < 40; n += 1) await appendLog(run.id, chunk(n), 64 * 1024 * 1024);
      const text = await (await get(`/api/runs/${run.id}/logs`)).text();
      expect(text.length).toBe(40 * 64 * 1024);
      expect(text.split('\n').slice(0, -1).map((line) => line.slice(0, 6))).toStrictEqual(Array.from({ length: 40 }, (_, n) => String(n).padStart(6, '0')));
    });

    it('follows the log until the run ends', async () => {
      const run = await store.createRun(newRun(), at(1));
      await store.transition(run.id, 'claim', at(2));
      await appendLog(run.id, 'building\n');

      const response = await get(`/api/runs/${run.id}/logs?follow=1`);
      expect(response.status).toBe(200);
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      const readUntil = async (wanted: string) => {
        while (!text.includes(wanted)) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`the stream ended before ${JSON.stringify(wanted)}; got ${JSON.stringify(text)}`);
          text += decoder.decode(value, { stream: true });
        }
      };
      await readUntil('building\n');
      await appendLog(run.id, 'running the task\n');
      await readUntil('running the task\n');
      await appendLog(run.id, 'last line\n');
      await store.transition(run.id, 'succeed', at(3), { exitCode: 0 });
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      expect(text).toBe('building\nrunning the task\nlast line\n');
    });

    it('answers a finished run’s log at once, even when following', async () => {
      const run = await store.createRun(newRun(), at(1));
      await store.transition(run.id, 'cancel', at(2));
      await appendLog(run.id, 'only line\n');
      expect(await (await get(`/api/runs/${run.id}/logs?follow=1`)).text()).toBe('only line\n');
    });
  });

  describe('events', () => {
    it('streams a snapshot, each state change and new log lines, with heartbeats, and ends with the final state', async () => {
      const run = await store.createRun(newRun(), at(1));
      await appendLog(run.id, 'an old line\n');
      const response = await get(`/api/runs/${run.id}/events`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      const events: { event: string; data: Record<string, unknown> }[] = [];
      let comments = 0;
      const next = async (): Promise<{ event: string; data: Record<string, unknown> } | null> => {
        for (;;) {
          const end = buffer.indexOf('\n\n');
          if (end !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (block.startsWith(':')) {
              comments += 1;
              continue;
            }
            const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
            const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as Record<string, unknown>;
            events.push({ event, data });
            return { event, data };
          }
          const { value, done } = await reader.read();
          if (done) return null;
          buffer += decoder.decode(value, { stream: true });
        }
      };

      expect(await next()).toMatchObject({ event: 'run.snapshot', data: { id: run.id, state: 'queued' } });
      await store.transition(run.id, 'claim', at(2), { workerId: 'w1' });
      expect(await next()).toMatchObject({ event: 'run.started', data: { state: 'running', started_at: at(2).toISOString() } });
      await appendLog(run.id, 'first new line\nsecond ');
      expect(await next()).toMatchObject({ event: 'run.log', data: { line: 'first new line' } });
      // Wait long enough for a heartbeat to arrive before the run ends.
      await new Promise((resolve) => setTimeout(resolve, 120));
      await appendLog(run.id, 'half\nunfinished');
      await store.transition(run.id, 'succeed', at(3), { exitCode: 0, outputCid: 'bafyroot' });
      expect(await next()).toMatchObject({ event: 'run.log', data: { line: 'second half' } });
      expect(await next()).toMatchObject({ event: 'run.log', data: { line: 'unfinished' } });
      expect(await next()).toMatchObject({ event: 'run.succeeded', data: { state: 'succeeded', exit_code: 0, output_cid: 'bafyroot' } });
      expect(await next()).toBeNull();
      expect(events.filter((event) => event.event === 'run.log').map((event) => event.data.line)).not.toContain('an old line');
      expect(comments).toBeGreaterThan(0);
    });

    it('ends at once for a run that has already ended', async () => {
      const run = await store.createRun(newRun(), at(1));
      await store.transition(run.id, 'claim', at(2));
      await store.transition(run.id, 'fail', at(2), { error: 'bad manifest' });
      const text = await (await get(`/api/runs/${run.id}/events`)).text();
      expect(text.match(/^event: .*$/gm)).toStrictEqual(['event: run.snapshot', 'event: run.failed']);
    });
  });

  describe('creating runs', () => {
    it('hands a valid request and the token’s identity to the use case, and answers 201 with the runs', async () => {
      const response = await post('/api/runs', JSON.stringify({ repo: 'octo-org/archive', ref: 'pull/17', task: 'snapshot', params: { lang: 'en' } }));
      expect(response.status).toBe(201);
      const body = (await response.json()) as { status: string; runs: { trigger: string; params: unknown; requested_by: string }[] };
      expect(body.status).toBe('queued');
      expect(body.runs[0]).toMatchObject({ trigger: 'api', params: { lang: 'en' } });
      expect(runs.created).toHaveLength(1);
      expect(runs.created[0]!.input).toStrictEqual({ repo: 'octo-org/archive', ref: 'pull/17', task: 'snapshot', params: { lang: 'en' } });
      const actor = runs.created[0]!.actor;
      expect(actor.kind).toBe('service');
      expect(actor.name).toMatch(/^service:[0-9a-f]{12}$/);
      expect(actor.name).not.toContain(token);
      expect(body.runs[0]!.requested_by).toBe(actor.name);
    });

    it.each([
      ['no repo', { task: 'x' }, 'repo'],
      ['a repo without owner', { repo: 'archive' }, 'repo'],
      ['a numeric task', { repo: 'octo-org/archive', task: 5 }, 'task'],
      ['a parameter that is not a string', { repo: 'octo-org/archive', params: { lang: 1 } }, 'params.lang'],
      ['a bad ref', { repo: 'octo-org/archive', ref: 'has space' }, 'ref'],
      ['an unknown field', { repo: 'octo-org/archive', branch: 'main' }, 'branch'],
    ])('refuses %s with 400 naming the field', async (_name, body, field) => {
      const response = await post('/api/runs', JSON.stringify(body));
      expect(response.status).toBe(400);
      const answer = (await response.json()) as { error: { code: string; field: string; message: string } };
      expect(answer.error).toMatchObject({ code: 'invalid_request', field });
      expect(answer.error.message).toContain(`\`${field}\``);
      expect(runs.created).toHaveLength(0);
    });

    it('answers 400 for a body that is not JSON, and 413 for one over 1 MiB', async () => {
      const broken = await post('/api/runs', '{"repo": ');
      expect(broken.status).toBe(400);
      expect(((await broken.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'invalid_request' });
      const huge = await post('/api/runs', JSON.stringify({ repo: 'octo-org/archive', params: { big: 'x'.repeat(1024 * 1024) } }));
      expect(huge.status).toBe(413);
      expect(((await huge.json()) as { error: { code: string } }).error.code).toBe('invalid_request');
      expect(runs.created).toHaveLength(0);
    });

    it('answers 422 refused and 404 not_found with the use case’s reason', async () => {
      const refused = await post('/api/runs', JSON.stringify({ repo: 'octo-org/archive', task: 'forbidden-task' }));
      expect(refused.status).toBe(422);
      expect(await refused.json()).toStrictEqual({ error: { code: 'refused', message: 'there is no task `forbidden-task`' } });
      const missing = await post('/api/runs', JSON.stringify({ repo: 'octo-org/missing' }));
      expect(missing.status).toBe(404);
      expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('not_found');
    });
  });

  describe('OpenAPI', () => {
    it('serves a JSON document without authentication, describing every endpoint with the schemas', async () => {
      const response = await get('/api/openapi.json', {});
      expect(response.status).toBe(200);
      const document = JSON.parse(await response.text()) as {
        openapi: string;
        paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
        components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
      };
      expect(document.openapi).toBe('3.1.0');
      expect(Object.keys(document.paths).sort()).toStrictEqual(
        ['/api/events', '/api/openapi.json', '/api/runs', '/api/runs/{id}', '/api/runs/{id}/cancel', '/api/runs/{id}/events', '/api/runs/{id}/logs', '/api/runs/{id}/pin', '/ipfs/{cid}', '/metrics', '/rpc'].sort(),
      );
      expect(Object.keys(document.paths['/api/runs']!).sort()).toStrictEqual(['get', 'post']);
      expect(document.components.schemas.Run!.properties).toHaveProperty('created_at');
      expect(document.components.schemas.CreateRunRequest!.properties).toHaveProperty('repo');
      expect(document.components.schemas.PinRunRequest!.properties).toHaveProperty('duration');
      expect(document.components.schemas.Run!.properties).toHaveProperty('pinned_until');
      // Every $ref points at a schema the document holds.
      const refs = [...JSON.stringify(document).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((match) => match[1]!);
      expect(refs.length).toBeGreaterThan(5);
      for (const ref of refs) expect(document.components.schemas, ref).toHaveProperty(ref);

      // Real answers match the published schemas.
      const ajv = addFormats(new Ajv2020({ strict: false }));
      ajv.addSchema({ $id: 'https://task-mgmt.invalid/openapi.json', components: document.components });
      const schema = (name: string) => ajv.getSchema(`https://task-mgmt.invalid/openapi.json#/components/schemas/${name}`)!;
      const run = await store.createRun(newRun(), at(1));
      await store.transition(run.id, 'claim', at(2));
      await store.transition(run.id, 'succeed', at(3), {
        exitCode: 0,
        outputCid: 'bafyroot',
        outputFiles: [{ name: 'a.txt', cid: 'bafyfile', size: 3, kind: 'file' }],
        metadata: { title: 'x' },
      });
      const checks: [string, unknown][] = [
        ['Run', await (await get(`/api/runs/${run.id}`)).json()],
        ['RunList', await (await get('/api/runs')).json()],
        ['CreateRunResponse', await (await post('/api/runs', JSON.stringify({ repo: 'octo-org/archive' }))).json()],
        ['Error', await (await get('/api/runs/nope')).json()],
        ['Error', await (await get('/api/runs?limit=x')).json()],
      ];
      expect(schema('Run')({ id: run.id })).toBe(false);
      for (const [name, body] of checks) {
        const validate = schema(name);
        expect(validate(body), `${name}: ${JSON.stringify(validate.errors)}`).toBe(true);
      }
    });
  });
});
