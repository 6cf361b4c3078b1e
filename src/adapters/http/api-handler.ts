/**
 * The JSON API (README "JSON API, JSON-RPC, events and metrics") as a plain node:http handler,
 * so it mounts on Probot's server next to the webhooks (`options.addHandler`): it answers
 * `/api/runs…` and `/api/openapi.json`, and returns false for every other path.
 *
 * Authentication, as `Authorization: Bearer`: a service token (API_TOKENS), which has the admin
 * role, or a GitHub user token (with `resolveUser`), which gets exactly that user's rights through
 * the same policy as their comments, and sees only the runs of repositories that user can read:
 * any other run is answered 404, exactly like a missing one.
 *
 * Logs and events come from the run store (RunLogs), which holds each run's log whichever worker
 * ran it; they are streamed in bounded pieces as the client takes them, and followed by polling.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { isFinal, type Run, type RunState } from '../../core/runs/run.js';
import type { AuditLog, RunLogs, RunRecords } from '../../ports/run-store.js';
import { runToJson } from './api-schemas.js';
import { ApiError, createAuthenticator, readJson, requestUrl, sendError, sendJson, type ApiActor, type UserTokenResolver } from './http-io.js';
import { buildOpenApiDocument } from './openapi.js';
import { requesterOf, RunOperations, type RunReads, type RunUseCases } from './run-operations.js';
import { watchAllRuns } from './runs-feed.js';
import { copyLog, LineSplitter, watchRun } from './run-watch.js';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

export interface ApiHandlerDeps {
  store: RunRecords & AuditLog & RunLogs;
  /** Service tokens (API_TOKENS); empty: every authenticated endpoint answers 401. */
  tokens: readonly string[];
  runs: RunUseCases;
  /** Which runs a caller may see (the run service). */
  reads: RunReads;
  /** Accepts GitHub user tokens too, as that user (unset: service tokens only). */
  resolveUser?: UserTokenResolver;
  /**
   * The dashboard's signed-in person, for reads (GET) sent without a bearer token: its pages
   * follow `/api/events` and logs with the session cookie. Never for a request that changes
   * anything, so no other site can make a signed-in browser act through the API.
   */
  sessionActor?: (req: IncomingMessage) => ApiActor | null;
  log: Pick<Logger, 'error' | 'warn' | 'debug'>;
  /** How often followed logs and event streams look for news (default 500 ms). */
  pollMs?: number;
  /** How often an idle event stream sends a comment line (default 15 s). */
  heartbeatMs?: number;
}

/** The event name of a state, as the README lists them (and the AMQP routing keys): running is `run.started`. */
export function runEventName(state: RunState): string {
  return state === 'running' ? 'run.started' : `run.${state}`;
}

export function createApiHandler(deps: ApiHandlerDeps): HttpHandler {
  const operations = new RunOperations({ store: deps.store, runs: deps.runs, reads: deps.reads });
  const authenticate = createAuthenticator(deps.tokens, deps.resolveUser);
  const pollMs = deps.pollMs ?? 500;
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  let openApiText: string | undefined;

  async function route(req: IncomingMessage, res: ServerResponse, url: URL, segments: string[]): Promise<void> {
    const method = req.method ?? 'GET';
    if (segments.length === 1 && segments[0] === 'openapi.json') {
      allow(method, ['GET', 'HEAD']);
      openApiText ??= JSON.stringify(buildOpenApiDocument());
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'public, max-age=300' });
      res.end(method === 'HEAD' ? undefined : openApiText);
      return;
    }

    const signedIn = (method === 'GET' || method === 'HEAD') && req.headers.authorization === undefined ? (deps.sessionActor?.(req) ?? null) : null;
    const actor = signedIn ?? (await authenticate(req));
    if (segments[0] === 'audit') {
      // The decisions log: every allowed or refused command with its reason. Operators only.
      allow(method, ['GET']);
      if (actor.kind !== 'service') throw new ApiError('forbidden', 'the audit log is for service tokens');
      const repo = url.searchParams.get('repo');
      if (segments.length !== 1 || !repo || !/^[^/\s]+\/[^/\s]+$/.test(repo)) throw new ApiError('invalid_request', 'give `repo=owner/name`', { field: 'repo' });
      const entries = await deps.store.listAudit(repo);
      return sendJson(res, 200, { entries: entries.map((entry) => ({ ...entry, at: entry.at.toISOString(), run_id: entry.runId, runId: undefined })) });
    }
    if (segments[0] === 'events') {
      allow(method, ['GET']);
      if (segments.length !== 1) throw notFoundPath(url);
      return serveAllEvents(res, actor);
    }
    const [, id, action, ...rest] = segments;
    if (rest.length > 0) throw notFoundPath(url);
    if (id === undefined) {
      allow(method, ['GET', 'POST']);
      if (method === 'GET') return sendJson(res, 200, await operations.list(queryObject(url), actor));
      const created = await operations.create(await readJson(req), actor);
      return sendJson(res, created.status, created.body);
    }
    if (action === undefined) {
      allow(method, ['GET']);
      return sendJson(res, 200, await operations.get(id, actor));
    }
    switch (action) {
      case 'cancel':
        allow(method, ['POST']);
        return sendJson(res, 200, await operations.cancel(id, actor));
      case 'pin':
        allow(method, ['POST']);
        return sendJson(res, 200, await operations.pin(id, await readJson(req), actor));
      case 'logs':
        allow(method, ['GET']);
        return serveLog(res, await operations.find(id, actor), url);
      case 'events':
        allow(method, ['GET']);
        return serveEvents(res, await operations.find(id, actor));
      default:
        throw notFoundPath(url);
    }
  }

  /**
   * The log from `?offset=` (a stream offset, 0 by default) to its end as it is now, or with
   * `?follow=1` on until the run ends. `X-Log-Size` says where the log ended when the answer
   * began: where a client that read it all goes on from.
   */
  async function serveLog(res: ServerResponse, run: Run, url: URL): Promise<void> {
    const follow = url.searchParams.get('follow') === '1';
    const offset = logOffset(url);
    const { size } = await deps.store.logInfo(run.id);
    res.writeHead(200, {
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'x-log-size': String(size),
    });
    const stop = closeSignal(res);
    const write = (bytes: Uint8Array) => writeOrWait(res, bytes);
    const reached = await copyLog(deps.store, run.id, offset, write, { signal: stop, ...(follow ? {} : { until: size }) });
    if (follow && !isFinal(run.state)) {
      await watchRun({ store: deps.store, runId: run.id, logOffset: reached, state: run.state, pollMs, signal: stop, onLog: write, onState: () => undefined });
    }
    res.end();
  }

  async function serveEvents(res: ServerResponse, run: Run): Promise<void> {
    openEventStream(res);
    const send = (event: string, data: unknown): void => {
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    send('run.snapshot', runToJson(run));
    if (isFinal(run.state)) {
      send(runEventName(run.state), runToJson(run));
      res.end();
      return;
    }
    const stop = closeSignal(res);
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
    const lines = new LineSplitter();
    try {
      // Events carry what happens from now on; the lines before are at /logs.
      const { size } = await deps.store.logInfo(run.id);
      await watchRun({
        store: deps.store,
        runId: run.id,
        logOffset: size,
        state: run.state,
        pollMs,
        signal: stop,
        onLog: (bytes) => {
          for (const line of lines.push(bytes)) send('run.log', { line });
          return res.writableNeedDrain ? drained(res) : undefined;
        },
        onState: (changed) => {
          if (isFinal(changed.state)) for (const line of lines.flush()) send('run.log', { line });
          send(runEventName(changed.state), runToJson(changed));
        },
      });
    } finally {
      clearInterval(heartbeat);
      res.end();
    }
  }

  /**
   * Every run the caller may read, as it changes: each change of state or record is the event of
   * the run's state carrying the run. The stream lasts until the client goes away.
   */
  async function serveAllEvents(res: ServerResponse, actor: ApiActor): Promise<void> {
    openEventStream(res);
    const stop = closeSignal(res);
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
    try {
      await watchAllRuns({
        store: deps.store,
        pollMs,
        signal: stop,
        // The first bytes say the stream is watching: every change from then on is sent.
        onReady: () => res.write(': every run you may read, from now on\n\n'),
        onRuns: async (changed) => {
          for (const run of await deps.reads.readable(requesterOf(actor), changed)) {
            res.write(`event: ${runEventName(run.state)}\ndata: ${JSON.stringify(runToJson(run))}\n\n`);
          }
          return res.writableNeedDrain ? drained(res) : undefined;
        },
      });
    } catch (error) {
      deps.log.warn({ err: error }, 'the event stream of every run ended on an error');
    } finally {
      clearInterval(heartbeat);
      res.end();
    }
  }

  return async (req, res) => {
    const url = requestUrl(req);
    const segments = pathSegments(url.pathname);
    if (segments === null || segments[0] === undefined || !['runs', 'audit', 'events', 'openapi.json'].includes(segments[0])) return false;
    try {
      await route(req, res, url, segments);
    } catch (error) {
      if (error instanceof ApiError) {
        sendError(res, error);
      } else {
        deps.log.error({ err: error, method: req.method, path: url.pathname }, 'API request failed');
        sendError(res, new ApiError('internal', 'the request failed on the server; it is logged', { cause: error }));
      }
    }
    return true;
  };
}

/** The decoded segments after `/api/`, or null for any other path. */
function pathSegments(pathname: string): string[] | null {
  if (!pathname.startsWith('/api/')) return null;
  const raw = pathname.slice('/api/'.length).replace(/\/$/, '').split('/');
  try {
    return raw.map((segment) => decodeURIComponent(segment));
  } catch {
    return null;
  }
}

/** Query parameters as an object; empty values count as unset (`?state=&repo=`). */
function queryObject(url: URL): Record<string, string> {
  return Object.fromEntries([...url.searchParams].filter(([, value]) => value !== ''));
}

function allow(method: string, allowed: string[]): void {
  if (!allowed.includes(method)) {
    throw new ApiError('invalid_request', `${method} is not allowed here; use ${allowed.join(' or ')}`, { status: 405 });
  }
}

function notFoundPath(url: URL): ApiError {
  return new ApiError('not_found', `there is no endpoint \`${url.pathname}\`; see /api/openapi.json`);
}

/** `?offset=`: a stream offset of the log, 0 when not given. */
function logOffset(url: URL): number {
  const given = url.searchParams.get('offset');
  if (given === null || given === '') return 0;
  if (!/^\d{1,15}$/.test(given)) throw new ApiError('invalid_request', '`offset` must be a byte offset: a whole number from 0', { field: 'offset' });
  return Number(given);
}

function openEventStream(res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    // nginx buffers responses unless told not to; events must arrive as they happen.
    'x-accel-buffering': 'no',
  });
}

/** Writes, and when the client is behind, resolves once it drained (or went away). */
function writeOrWait(res: ServerResponse, bytes: Uint8Array): Promise<void> | undefined {
  return res.write(bytes) ? undefined : drained(res);
}

function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed || res.writableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

/** Aborts when the client goes away (or the response ends). */
function closeSignal(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => controller.abort());
  return controller.signal;
}
