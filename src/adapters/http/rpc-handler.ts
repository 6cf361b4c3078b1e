/**
 * `POST /rpc`: JSON-RPC 2.0 (https://www.jsonrpc.org/specification) over the JSON API's
 * operations, for services that fold task-mgmt into a larger API. Methods and their params:
 * `runs.list` (the list query: state, repo, limit, cursor), `runs.get` ({ id }), `runs.create`
 * (the create body), `runs.cancel` ({ id }), `runs.pin` ({ id, duration }); results are the JSON API's response bodies.
 * Params are named (an object). Batches and notifications (no `id`: executed, never answered)
 * are supported, up to 50 calls a batch. Same bearer token as the JSON API; without a valid one the whole HTTP request
 * is answered 401 with error -32001.
 *
 * Application errors carry the JSON API's error code in `error.data.code`:
 * -32001 unauthorized, -32003 forbidden, -32004 not found, -32009 conflict, -32010 refused.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ErrorCode } from './api-schemas.js';
import { pinRunParamsSchema, runIdParamsSchema } from './api-schemas.js';
import type { HttpHandler } from './api-handler.js';
import { closeAfterAnswer } from '../net/close-after-answer.js';
import { ApiError, createAuthenticator, readBody, requestUrl, sendJson, type ApiActor, type UserTokenResolver } from './http-io.js';
import { parse, RunOperations, type RunReads, type RunUseCases } from './run-operations.js';
import type { RunRecords } from '../../ports/run-store.js';

export const rpcErrorCodes = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internal: -32603,
  unauthorized: -32001,
  forbidden: -32003,
  notFound: -32004,
  conflict: -32009,
  refused: -32010,
  unavailable: -32011,
} as const;

const codeOf: Record<ErrorCode, number> = {
  invalid_request: rpcErrorCodes.invalidParams,
  unauthorized: rpcErrorCodes.unauthorized,
  forbidden: rpcErrorCodes.forbidden,
  not_found: rpcErrorCodes.notFound,
  conflict: rpcErrorCodes.conflict,
  refused: rpcErrorCodes.refused,
  internal: rpcErrorCodes.internal,
  unavailable: rpcErrorCodes.unavailable,
};

/**
 * Most calls one batch may hold. Each call may ask GitHub and write to the store, and the calls
 * of a batch run at once: without a bound, one HTTP request could start thousands of them.
 */
export const maxBatchCalls = 50;

type RpcId = string | number | null;

interface RpcError {
  code: number;
  message: string;
  data?: { code: ErrorCode; field?: string };
}

type RpcResponse = { jsonrpc: '2.0'; id: RpcId; result: unknown } | { jsonrpc: '2.0'; id: RpcId; error: RpcError };

export interface RpcHandlerDeps {
  store: RunRecords;
  tokens: readonly string[];
  runs: RunUseCases;
  /** Which runs a caller may see (the run service): `runs.list` leaves out, `runs.get` answers not found. */
  reads: RunReads;
  /** Accepts GitHub user tokens too, as that user (unset: service tokens only). */
  resolveUser?: UserTokenResolver;
  log: Pick<Logger, 'error'>;
}

type Method = (params: Record<string, unknown>, actor: ApiActor) => Promise<unknown>;

export function createRpcHandler(deps: RpcHandlerDeps): HttpHandler {
  const operations = new RunOperations({ store: deps.store, runs: deps.runs, reads: deps.reads });
  const authenticate = createAuthenticator(deps.tokens, deps.resolveUser);
  const methods: Record<string, Method> = {
    'runs.list': (params, actor) => operations.list(params, actor),
    'runs.get': (params, actor) => operations.get(parse(runIdParamsSchema, params).id, actor),
    'runs.create': async (params, actor) => (await operations.create(params, actor)).body,
    'runs.cancel': (params, actor) => operations.cancel(parse(runIdParamsSchema, params).id, actor),
    'runs.pin': (params, actor) => {
      const { id, duration } = parse(pinRunParamsSchema, params);
      return operations.pin(id, { duration }, actor);
    },
  };

  /** One call; undefined for a notification. */
  async function call(message: unknown, actor: ApiActor): Promise<RpcResponse | undefined> {
    if (!isObject(message)) return failure(null, rpcErrorCodes.invalidRequest, 'a request must be a JSON object');
    const hasId = 'id' in message;
    const id = message.id;
    if (hasId && !(typeof id === 'string' || typeof id === 'number' || id === null)) {
      return failure(null, rpcErrorCodes.invalidRequest, '`id` must be a string, a number or null');
    }
    const answerId: RpcId = hasId ? (id as RpcId) : null;
    if (message.jsonrpc !== '2.0') return failure(answerId, rpcErrorCodes.invalidRequest, '`jsonrpc` must be "2.0"');
    if (typeof message.method !== 'string') return failure(answerId, rpcErrorCodes.invalidRequest, '`method` must be a string');
    const params = message.params ?? {};
    if (!isObject(params)) {
      return hasId ? failure(answerId, rpcErrorCodes.invalidParams, '`params` must be an object (named parameters)') : undefined;
    }
    const method = Object.hasOwn(methods, message.method) ? methods[message.method] : undefined;
    if (!method) {
      return hasId ? failure(answerId, rpcErrorCodes.methodNotFound, `there is no method \`${message.method}\`; the methods are ${Object.keys(methods).join(', ')}`) : undefined;
    }
    try {
      const result = await method(params, actor);
      return hasId ? { jsonrpc: '2.0', id: answerId, result } : undefined;
    } catch (error) {
      if (!(error instanceof ApiError)) deps.log.error({ err: error, method: message.method }, 'RPC call failed');
      if (!hasId) return undefined;
      const known = error instanceof ApiError ? error : new ApiError('internal', 'the call failed on the server; it is logged');
      return failure(answerId, codeOf[known.code], known.message, { code: known.code, ...(known.field !== undefined ? { field: known.field } : {}) });
    }
  }

  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let actor: ApiActor;
    try {
      actor = await authenticate(req);
    } catch (error) {
      const message = error instanceof Error ? error.message : 'unauthorized';
      return sendJson(res, 401, failure(null, rpcErrorCodes.unauthorized, message, { code: 'unauthorized' }), { 'www-authenticate': 'Bearer' });
    }
    let text: string;
    try {
      text = (await readBody(req)).toString('utf8');
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 413) closeAfterAnswer(req, res);
      return sendJson(res, error.status, failure(null, rpcErrorCodes.invalidRequest, error.message));
    }
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch (error) {
      return sendJson(res, 200, failure(null, rpcErrorCodes.parseError, `parse error: ${(error as Error).message}`));
    }
    if (Array.isArray(message)) {
      if (message.length === 0) return sendJson(res, 200, failure(null, rpcErrorCodes.invalidRequest, 'a batch must hold at least one request'));
      if (message.length > maxBatchCalls) {
        return sendJson(res, 200, failure(null, rpcErrorCodes.invalidRequest, `a batch holds at most ${maxBatchCalls} calls; this one has ${message.length}`));
      }
      const answers = (await Promise.all(message.map((item) => call(item, actor)))).filter((item) => item !== undefined);
      if (answers.length === 0) return noContent(res);
      return sendJson(res, 200, answers);
    }
    const single = await call(message, actor);
    return single === undefined ? noContent(res) : sendJson(res, 200, single);
  }

  return async (req, res) => {
    if (requestUrl(req).pathname !== '/rpc') return false;
    if (req.method !== 'POST') {
      sendJson(res, 405, failure(null, rpcErrorCodes.invalidRequest, 'JSON-RPC requests are POSTed'), { allow: 'POST' });
      return true;
    }
    try {
      await answer(req, res);
    } catch (error) {
      deps.log.error({ err: error }, 'RPC request failed');
      if (!res.headersSent) sendJson(res, 500, failure(null, rpcErrorCodes.internal, 'the request failed on the server; it is logged'));
    }
    return true;
  };
}

function failure(id: RpcId, code: number, message: string, data?: RpcError['data']): RpcResponse {
  return { jsonrpc: '2.0', id, error: { code, message, ...(data ? { data } : {}) } };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function noContent(res: ServerResponse): void {
  res.writeHead(204).end();
}
