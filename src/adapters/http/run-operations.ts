/**
 * The operations the JSON API and JSON-RPC both offer (list, get, create, cancel, pin), once:
 * each parses its input with the API schemas, calls the store or the use cases, and answers a
 * response body or throws an ApiError the two handlers translate into their own error shapes.
 *
 * Paging: `next_cursor` is an opaque token naming the last run of the page (its creation time
 * and id), so runs created while a client pages do not shift the pages. The run store lists at
 * most 500 runs per query and has no "older than" filter, so the pages are cut from the newest
 * 500 runs that match `state` and `repo`; a cursor past them is refused with a message that says
 * to narrow the query.
 *
 * Reads follow GitHub: a user token sees only the runs of repositories that user can read (the
 * run service decides). A listing leaves the others out before it cuts pages, so pages stay full
 * and cursors stay valid; a run the caller may not see is answered exactly as a missing one.
 */
import { z } from 'zod';
import type { PinOutcome, RunService } from '../../core/run-service/run-service.js';
import type { Requester, Run } from '../../core/runs/run.js';
import type { RunRecords } from '../../ports/run-store.js';
import {
  createRunRequestSchema,
  describeIssues,
  listRunsQuerySchema,
  pinRunRequestReader,
  runToJson,
  type CancelRunResponseJson,
  type CreateRunRequest,
  type CreateRunResponseJson,
  type PinRunResponseJson,
  type RunJson,
  type RunListJson,
} from './api-schemas.js';
import { ApiError, type ApiActor } from './http-io.js';

/** What creating runs can come to; `queued`, `refused` and `waiting` are requestRun's outcomes. */
export type CreateOutcome =
  | { kind: 'queued'; runs: Run[] }
  | { kind: 'waiting'; reason: string; sha: string }
  | { kind: 'refused'; reason: string }
  /** The repository (or the App's installation on it, or the ref) does not exist. */
  | { kind: 'not_found'; reason: string };

export type CancelOutcome =
  | { kind: 'cancelled'; run: Run }
  | { kind: 'not_found'; reason: string }
  /** The run had already ended; `run` is as it ended. */
  | { kind: 'already_final'; run: Run }
  | { kind: 'refused'; reason: string };

/**
 * The use cases behind `POST /api/runs` and `POST /api/runs/:id/cancel`. Whoever builds this
 * sends creation through `requestRun` with trigger `api`, so the API is one more door to the same
 * policy, audit and check runs as a comment.
 */
export interface RunUseCases {
  create(input: CreateRunRequest, actor: ApiActor): Promise<CreateOutcome>;
  cancel(runId: string, actor: ApiActor): Promise<CancelOutcome>;
  /** `POST /api/runs/:id/pin`, `runs.pin`: the run service's `/pin`. */
  pin(runId: string, durationMs: number, actor: ApiActor): Promise<PinOutcome>;
}

/** Which runs a caller may see: the run service's reads. */
export type RunReads = Pick<RunService, 'canRead' | 'readable'>;

export interface RunOperationsDeps {
  store: RunRecords;
  runs: RunUseCases;
  reads: RunReads;
}

/** The API's caller as the run service's requester. */
export function requesterOf(actor: ApiActor): Requester {
  return { kind: actor.kind, login: actor.name };
}

/** How many runs a listing looks at, at most (the run store's own cap per query). */
export const listWindow = 500;

export type CreateResult = { status: 201 | 202; body: CreateRunResponseJson };

export class RunOperations {
  constructor(private readonly deps: RunOperationsDeps) {}

  async list(input: unknown, actor: ApiActor): Promise<RunListJson> {
    const query = parse(listRunsQuerySchema, input);
    const after = query.cursor === undefined ? null : decodeCursor(query.cursor);
    const matching = await this.deps.store.listRuns({
      ...(query.state ? { state: query.state } : {}),
      ...(query.repo ? { repo: query.repo } : {}),
      limit: listWindow,
    });
    /** The store may hold more matching runs than it gave. */
    const full = matching.length >= listWindow;
    const window = await this.deps.reads.readable(requesterOf(actor), matching);
    let start = 0;
    if (after) {
      start = window.findIndex((run) => isOlder(run, after));
      if (start === -1 && full) {
        throw new ApiError('invalid_request', `paging reaches only the newest ${listWindow} matching runs; narrow the listing with \`state\` or \`repo\``, {
          field: 'cursor',
        });
      }
      if (start === -1) start = window.length;
    }
    const page = window.slice(start, start + query.limit);
    const last = page.at(-1);
    const more = last !== undefined && (start + page.length < window.length || full);
    return { runs: page.map(runToJson), next_cursor: more ? encodeCursor(last) : null };
  }

  async get(id: string, actor: ApiActor): Promise<RunJson> {
    return runToJson(await this.find(id, actor));
  }

  /** The run, if it exists and the caller may see it; the same 404 either way (as GitHub does). */
  async find(id: string, actor: ApiActor): Promise<Run> {
    const run = await this.deps.store.getRun(id);
    if (!run || !(await this.deps.reads.canRead(requesterOf(actor), run.repo))) throw new ApiError('not_found', `there is no run \`${id}\``);
    return run;
  }

  async create(input: unknown, actor: ApiActor): Promise<CreateResult> {
    const request = parse(createRunRequestSchema, input);
    const outcome = await this.deps.runs.create(request, actor);
    switch (outcome.kind) {
      case 'queued':
        return { status: 201, body: { status: 'queued', runs: outcome.runs.map(runToJson) } };
      case 'waiting':
        return { status: 202, body: { status: 'waiting', runs: [], reason: outcome.reason, sha: outcome.sha } };
      case 'refused':
        throw new ApiError('refused', outcome.reason);
      case 'not_found':
        throw new ApiError('not_found', outcome.reason);
    }
  }

  async cancel(id: string, actor: ApiActor): Promise<CancelRunResponseJson> {
    const outcome = await this.deps.runs.cancel(id, actor);
    switch (outcome.kind) {
      case 'cancelled':
        return { run: runToJson(outcome.run) };
      case 'already_final':
        throw new ApiError('conflict', `the run \`${id}\` has already ended (${outcome.run.state})`);
      case 'refused':
        throw new ApiError('refused', outcome.reason);
      case 'not_found':
        throw new ApiError('not_found', outcome.reason);
    }
  }

  /**
   * Keeps a run's outputs pinned longer. A run the caller may not see is not found; one with
   * nothing pinned (not finished, or collected) is a conflict; a duration past PIN_TTL_MAX is a
   * bad request naming `duration`.
   */
  async pin(id: string, input: unknown, actor: ApiActor): Promise<PinRunResponseJson> {
    const { duration } = parse(pinRunRequestReader, input);
    const outcome = await this.deps.runs.pin(id, duration, actor);
    if (outcome.kind === 'pinned') return { run: runToJson(outcome.run), pinned_until: outcome.pinnedUntil.toISOString(), extended: outcome.extended };
    switch (outcome.code) {
      case 'not_found':
        throw new ApiError('not_found', outcome.reason);
      case 'params':
        throw new ApiError('invalid_request', outcome.reason, { field: 'duration' });
      case 'nothing_to_do':
        throw new ApiError('conflict', outcome.reason);
      default:
        throw new ApiError('refused', outcome.reason);
    }
  }
}

/** Parses input with a schema; a failure is a 400 naming the field. */
export function parse<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const { message, field } = describeIssues(parsed.error);
  throw new ApiError('invalid_request', message, { field });
}

interface CursorPosition {
  createdAt: number;
  id: string;
}

const cursorSchema = z.object({ t: z.iso.datetime(), id: z.string().min(1) });

function encodeCursor(run: Run): string {
  return Buffer.from(JSON.stringify({ t: run.createdAt.toISOString(), id: run.id }), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): CursorPosition {
  try {
    const parsed = cursorSchema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    return { createdAt: Date.parse(parsed.t), id: parsed.id };
  } catch (error) {
    throw new ApiError('invalid_request', 'the cursor is not one this API gave out; pass `next_cursor` as it came', { field: 'cursor', cause: error });
  }
}

/** The store's order is (created_at, id) descending: "older" is later in a listing. */
function isOlder(run: Run, than: CursorPosition): boolean {
  const time = run.createdAt.getTime();
  return time < than.createdAt || (time === than.createdAt && run.id < than.id);
}
