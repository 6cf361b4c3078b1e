/** JSON-RPC 2.0 at /rpc, mounted through createHttpApi on a real server with a real SQLite store. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { at, newRun } from '../../../test/contracts/run-store.contract.js';
import { MemoryRepoHost } from '../local/memory-repo-host.js';
import { SqliteRunStore } from '../store/sqlite-run-store.js';
import { ReadAccess } from '../../core/run-service/run-service.js';
import { createHttpApi } from './http-api.js';
import type { CancelOutcome, CreateOutcome, RunUseCases } from './run-operations.js';

const token = 'rpc-test-token';

describe('JSON-RPC at /rpc', () => {
  let store: SqliteRunStore;
  let server: Server;
  let base: string;
  let createCalls: number;

  beforeEach(async () => {
    store = await SqliteRunStore.open(':memory:');
    createCalls = 0;
    const runs: RunUseCases = {
      async create(input, actor): Promise<CreateOutcome> {
        createCalls += 1;
        if (input.task === 'refused') return { kind: 'refused', reason: '@someone lacks write access' };
        return { kind: 'queued', runs: [await store.createRun(newRun({ trigger: 'api', requestedBy: actor.name }), at(50))] };
      },
      async cancel(runId): Promise<CancelOutcome> {
        const run = await store.getRun(runId);
        if (!run) return { kind: 'not_found', reason: `there is no run \`${runId}\`` };
        const cancelled = await store.transition(runId, 'cancel', at(60));
        return cancelled ? { kind: 'cancelled', run: cancelled } : { kind: 'already_final', run };
      },
      async pin(runId, durationMs) {
        const run = await store.getRun(runId);
        if (!run) return { kind: 'refused', code: 'not_found', reason: `there is no run \`${runId}\`` };
        const pinnedUntil = new Date(at(70).getTime() + durationMs);
        return { kind: 'pinned', run: { ...run, pinnedUntil }, pinnedUntil, extended: true };
      },
    };
    const handler = createHttpApi({ store, tokens: [token], runs, reads: new ReadAccess({ hostFor: async () => new MemoryRepoHost(), now: () => new Date() }), log: pino({ level: 'silent' }) });
    server = createServer((req, res) => {
      void handler(req, res).then((handled) => {
        if (!handled) res.writeHead(404).end();
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

  const rpc = (body: string, authorization = `Bearer ${token}`) =>
    fetch(`${base}/rpc`, { method: 'POST', headers: { 'content-type': 'application/json', authorization }, body });
  const call = async (body: unknown) => {
    const response = await rpc(JSON.stringify(body));
    expect(response.status).toBe(200);
    return (await response.json()) as Record<string, unknown> & { error?: { code: number; message: string; data?: Record<string, unknown> } };
  };

  it('answers a single call with its id and the JSON API’s body', async () => {
    const run = await store.createRun(newRun(), at(1));
    expect(await call({ jsonrpc: '2.0', id: 1, method: 'runs.get', params: { id: run.id } })).toMatchObject({
      jsonrpc: '2.0',
      id: 1,
      result: { id: run.id, state: 'queued', created_at: at(1).toISOString() },
    });
    const list = await call({ jsonrpc: '2.0', id: 'list', method: 'runs.list', params: { state: 'queued', limit: 5 } });
    expect(list).toMatchObject({ id: 'list', result: { runs: [{ id: run.id }], next_cursor: null } });
    const created = await call({ jsonrpc: '2.0', id: 2, method: 'runs.create', params: { repo: 'octo-org/archive' } });
    expect(created).toMatchObject({ id: 2, result: { status: 'queued', runs: [{ trigger: 'api' }] } });
    expect(await call({ jsonrpc: '2.0', id: 3, method: 'runs.cancel', params: { id: run.id } })).toMatchObject({ id: 3, result: { run: { state: 'cancelled' } } });
    const until = new Date(at(70).getTime() + 86_400_000).toISOString();
    expect(await call({ jsonrpc: '2.0', id: 4, method: 'runs.pin', params: { id: run.id, duration: '1d' } })).toMatchObject({ id: 4, result: { pinned_until: until, extended: true } });
    expect(await call({ jsonrpc: '2.0', id: 5, method: 'runs.pin', params: { id: run.id, duration: 'soon' } })).toMatchObject({ id: 5, error: { code: -32602 } });
  });

  it('answers a batch in one array, leaving out notifications, and runs the notifications', async () => {
    const run = await store.createRun(newRun(), at(1));
    const response = await rpc(
      JSON.stringify([
        { jsonrpc: '2.0', id: 'a', method: 'runs.get', params: { id: run.id } },
        { jsonrpc: '2.0', method: 'runs.create', params: { repo: 'octo-org/archive' } },
        { jsonrpc: '2.0', id: 'b', method: 'runs.get', params: { id: 'missing' } },
        { jsonrpc: '2.0', id: 'c', method: 'runs.nothing' },
        42,
      ]),
    );
    expect(response.status).toBe(200);
    const answers = (await response.json()) as { id: unknown; result?: unknown; error?: { code: number } }[];
    expect(answers).toHaveLength(4);
    const byId = new Map(answers.map((answer) => [answer.id, answer]));
    expect(byId.get('a')).toMatchObject({ result: { id: run.id } });
    expect(byId.get('b')).toMatchObject({ error: { code: -32004, data: { code: 'not_found' } } });
    expect(byId.get('c')).toMatchObject({ error: { code: -32601 } });
    expect(byId.get(null)).toMatchObject({ error: { code: -32600 } });
    expect(createCalls).toBe(1);
  });

  it('answers nothing (204) to notifications only', async () => {
    const single = await rpc(JSON.stringify({ jsonrpc: '2.0', method: 'runs.create', params: { repo: 'octo-org/archive' } }));
    expect(single.status).toBe(204);
    expect(await single.text()).toBe('');
    const batch = await rpc(JSON.stringify([{ jsonrpc: '2.0', method: 'runs.list' }, { jsonrpc: '2.0', method: 'runs.unknown' }]));
    expect(batch.status).toBe(204);
    expect(createCalls).toBe(1);
  });

  it.each([
    ['a parse error', '{"jsonrpc": "2.0", "method": ', -32700],
    ['an empty batch', '[]', -32600],
    ['a request without jsonrpc', '{"id": 1, "method": "runs.list"}', -32600],
    ['a method that is not a string', '{"jsonrpc": "2.0", "id": 1, "method": 7}', -32600],
    ['an unknown method', '{"jsonrpc": "2.0", "id": 1, "method": "runs.delete"}', -32601],
    ['an inherited property as method', '{"jsonrpc": "2.0", "id": 1, "method": "toString"}', -32601],
    ['positional params', '{"jsonrpc": "2.0", "id": 1, "method": "runs.get", "params": ["x"]}', -32602],
  ])('answers %s with %i', async (_name, body, code) => {
    const response = await rpc(body);
    expect(response.status).toBe(200);
    const answer = (await response.json()) as { jsonrpc: string; error: { code: number } };
    expect(answer.jsonrpc).toBe('2.0');
    expect(answer.error.code).toBe(code);
  });

  it('answers a batch of more than 50 calls with one -32600 error, and calls none of them', async () => {
    const create = (i: number) => ({ jsonrpc: '2.0', id: i, method: 'runs.create', params: { repo: 'octo-org/archive' } });
    const answer = await call(Array.from({ length: 51 }, (_, i) => create(i)));
    expect(answer).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32600, message: expect.stringContaining('at most 50') } });
    expect(createCalls).toBe(0);
    const fifty = (await (await rpc(JSON.stringify(Array.from({ length: 50 }, (_, i) => create(i))))).json()) as unknown[];
    expect(fifty).toHaveLength(50);
    expect(createCalls).toBe(50);
  });

  it('answers invalid params with -32602 naming the field', async () => {
    const answer = await call({ jsonrpc: '2.0', id: 9, method: 'runs.create', params: { repo: 'octo-org/archive', params: { lang: 3 } } });
    expect(answer).toMatchObject({ id: 9, error: { code: -32602, data: { code: 'invalid_request', field: 'params.lang' } } });
    expect(answer.error!.message).toContain('params.lang');
    const missingId = await call({ jsonrpc: '2.0', id: 10, method: 'runs.get', params: {} });
    expect(missingId).toMatchObject({ error: { code: -32602, data: { field: 'id' } } });
    expect(createCalls).toBe(0);
  });

  it('answers the application errors: refused and conflict', async () => {
    expect(await call({ jsonrpc: '2.0', id: 1, method: 'runs.create', params: { repo: 'octo-org/archive', task: 'refused' } })).toMatchObject({
      error: { code: -32010, message: '@someone lacks write access', data: { code: 'refused' } },
    });
    const run = await store.createRun(newRun(), at(1));
    await store.transition(run.id, 'claim', at(2));
    await store.transition(run.id, 'fail', at(2));
    expect(await call({ jsonrpc: '2.0', id: 2, method: 'runs.cancel', params: { id: run.id } })).toMatchObject({ error: { code: -32009, data: { code: 'conflict' } } });
  });

  it('answers 401 with -32001 without a valid token, and calls nothing', async () => {
    for (const authorization of ['', 'Bearer wrong']) {
      const response = await rpc(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'runs.create', params: { repo: 'octo-org/archive' } }), authorization);
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32001 } });
    }
    expect(createCalls).toBe(0);
  });
});
