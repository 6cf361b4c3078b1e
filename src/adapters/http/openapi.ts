/**
 * The OpenAPI 3.1 description of the JSON API, generated from the zod schemas the handlers parse
 * and answer with, so the document cannot drift from the code. Served at `GET /api/openapi.json`.
 */
import { z } from 'zod';
import { apiSchemaRegistry, listRunsQuerySchema } from './api-schemas.js';

type JsonObject = Record<string, unknown>;

const ref = (id: string): JsonObject => ({ $ref: `#/components/schemas/${id}` });
const json = (schema: JsonObject): JsonObject => ({ 'application/json': { schema } });
const errorResponse = (description: string): JsonObject => ({ description, content: json(ref('Error')) });

const commonErrors = {
  '401': errorResponse('No bearer token, or one that is neither a service token nor a GitHub user token (code `unauthorized`).'),
  '500': errorResponse('Something failed on the server (code `internal`).'),
  '503': errorResponse('A server the app needs, such as the run queue, is not answering; try again later (code `unavailable`).'),
};

const runIdParameter = { name: 'id', in: 'path', required: true, description: 'The run id.', schema: { type: 'string' } };

/** A JSON Schema without the dialect and id headers zod puts on top-level schemas. */
function bare(schema: JsonObject): JsonObject {
  const { $schema: _dialect, $id: _id, ...rest } = schema;
  return rest;
}

function queryParameters(): JsonObject[] {
  const descriptions: Record<string, string> = {
    state: 'Only runs in this state.',
    repo: 'Only runs of this repository, `owner/name`.',
    limit: 'Runs per page (1–100, default 20).',
    cursor:
      '`next_cursor` of the previous page. Pages are cut from the newest 500 runs that match `state` and `repo`; a cursor past them is refused.',
  };
  return Object.entries(listRunsQuerySchema.shape).map(([name, schema]) => ({
    name,
    in: 'query',
    required: false,
    description: descriptions[name],
    schema: bare(z.toJSONSchema(schema, { io: 'input' }) as JsonObject),
  }));
}

const ipfsQuery = (name: string, description: string, schema: JsonObject): JsonObject => ({ name, in: 'query', required: false, description, schema });

/** `/ipfs/{cid}` (README "Fetching outputs"): the Path and Trustless Gateway specifications' answers, not JSON. */
function ipfsOperation(operationId: string, summary: string): JsonObject {
  const binary = { schema: { type: 'string', format: 'binary' } };
  const line = (description: string): JsonObject => ({ description, content: { 'text/plain': { schema: { type: 'string' } } } });
  return {
    operationId,
    summary,
    description:
      'Follows https://specs.ipfs.tech/http-gateways/path-gateway/ and …/trustless-gateway/. `Accept: application/vnd.ipld.raw` ' +
      'or `format=raw`: one block, by CID alone. `Accept: application/vnd.ipld.car` or `format=car`: a CARv1 streamed depth first, ' +
      'rooted at the CID the path ends at, holding the blocks of the path and then what `dag-scope` selects. Otherwise the file ' +
      '(one `Range`), a folder’s `index.html`, or an HTML listing of the folder. Served only while a live pin holds the CID: ' +
      'outputs of public repositories to anyone, those of private ones to a bearer token that may read the run; anything else ' +
      'is the same 404. Every answer carries `X-Content-Type-Options: nosniff` and `Content-Security-Policy: sandbox`; errors ' +
      'are one line of text.',
    security: [{}, { serviceToken: [] }],
    parameters: [
      { name: 'cid', in: 'path', required: true, description: 'A CIDv0 or CIDv1, optionally followed by `/` and a UnixFS path.', schema: { type: 'string' } },
      ipfsQuery('format', 'The response type, instead of `Accept`.', { type: 'string', enum: ['raw', 'car'] }),
      ipfsQuery('dag-scope', 'CAR only: the whole DAG at the end of the path, its entity, or its one block.', { type: 'string', enum: ['all', 'entity', 'block'], default: 'all' }),
      ipfsQuery('entity-bytes', 'CAR only: `from:to` (negative from the end, `*` the end): only the blocks of that byte range of a file.', { type: 'string' }),
      ipfsQuery('car-dups', 'CAR only: `y` sends a block each time the walk meets it.', { type: 'string', enum: ['y', 'n'], default: 'n' }),
      ipfsQuery('filename', 'Names the file in `Content-Disposition` and helps guess its type.', { type: 'string' }),
      ipfsQuery('download', '`true`: `Content-Disposition: attachment`.', { type: 'string', enum: ['true', 'false'] }),
    ],
    responses: {
      '200': {
        description: 'The block, the CAR, the file or the listing. `ETag` is the CID (`.raw`, `.car.<scope>` suffixed); immutable.',
        headers: {
          ETag: { schema: { type: 'string' } },
          'X-Ipfs-Path': { description: 'The path asked for.', schema: { type: 'string' } },
          'X-Ipfs-Roots': { description: 'The CID of each segment of the path, comma-separated.', schema: { type: 'string' } },
        },
        content: { 'application/vnd.ipld.raw': binary, 'application/vnd.ipld.car': binary, 'application/octet-stream': binary, 'text/html': { schema: { type: 'string' } } },
      },
      '206': { description: 'The one range `Range` asked for.', content: { 'application/octet-stream': binary } },
      '301': { description: 'A folder asked for without its trailing `/`: `Location` adds it.' },
      '304': { description: '`If-None-Match` named the answer’s ETag.' },
      '400': line('A CID, path or parameter that is not valid.'),
      '401': line('A bearer token that is neither a service token nor a GitHub user token.'),
      '404': line('Not held by a live pin, not the caller’s to read, or no such path below the CID.'),
      '406': line('`Accept` named only CAR shapes that are not served (CARv1 only).'),
      '416': line('The range starts past the end.'),
    },
  };
}

export function buildOpenApiDocument(): JsonObject {
  const generated = z.toJSONSchema(apiSchemaRegistry, { uri: (id) => `#/components/schemas/${id}` }) as { schemas: Record<string, JsonObject> };
  const schemas = Object.fromEntries(Object.entries(generated.schemas).map(([id, schema]) => [id, bare(schema)]));
  return {
    openapi: '3.1.0',
    info: {
      title: 'task-mgmt',
      version: '1',
      description:
        'List, create, watch and cancel task runs. Every endpoint but this document and /metrics needs ' +
        '`Authorization: Bearer <token>` with a service token from `API_TOKENS` (admin role) or a GitHub user token, which gets ' +
        'exactly the rights that user has through comments. Errors are `{ "error": { "code", "message", "field"? } }` ' +
        'with a stable `code`. The same operations are offered as JSON-RPC 2.0 at `POST /rpc`.',
    },
    components: {
      schemas,
      securitySchemes: { serviceToken: { type: 'http', scheme: 'bearer', description: 'A service token from API_TOKENS, or a GitHub user token.' } },
    },
    security: [{ serviceToken: [] }],
    paths: {
      '/api/runs': {
        get: {
          operationId: 'listRuns',
          summary: 'List runs, newest first',
          parameters: queryParameters(),
          responses: { '200': { description: 'A page of runs.', content: json(ref('RunList')) }, '400': errorResponse('A query parameter is invalid (code `invalid_request`, `field` names it).'), ...commonErrors },
        },
        post: {
          operationId: 'createRun',
          summary: 'Ask for a run, as `/run` on GitHub would: same policy, audit and check runs',
          requestBody: { required: true, content: json(ref('CreateRunRequest')) },
          responses: {
            '201': { description: 'Queued: one run per task.', content: json(ref('CreateRunResponse')) },
            '202': { description: 'Waiting for an approving review; nothing was queued.', content: json(ref('CreateRunResponse')) },
            '400': errorResponse('The body is not JSON or not a valid request (code `invalid_request`, `field` names the field).'),
            '404': errorResponse('No such repository or ref, or the App is not installed on it (code `not_found`).'),
            '413': errorResponse('The body is larger than 1 MiB (code `invalid_request`).'),
            '422': errorResponse('The policy refused the request; the message says what is missing (code `refused`).'),
            ...commonErrors,
          },
        },
      },
      '/api/runs/{id}': {
        get: {
          operationId: 'getRun',
          summary: 'One run',
          parameters: [runIdParameter],
          responses: { '200': { description: 'The run.', content: json(ref('Run')) }, '404': errorResponse('No such run (code `not_found`).'), ...commonErrors },
        },
      },
      '/api/runs/{id}/logs': {
        get: {
          operationId: 'getRunLogs',
          summary: 'The run’s log as text, streamed',
          description:
            'The log as the run store keeps it, whichever worker ran the task. Past `LOG_MAX_BYTES` the store keeps the first ' +
            'and the last half, and a line `task-mgmt: … N bytes of log cut here (LOG_MAX_BYTES)` stands where bytes were cut. ' +
            'Offsets count every byte the run printed, cut or not.',
          parameters: [
            runIdParameter,
            {
              name: 'offset',
              in: 'query',
              required: false,
              description: 'Start at this byte of the log (default 0): a client that read up to `X-Log-Size` goes on from there.',
              schema: { type: 'integer', minimum: 0 },
            },
            {
              name: 'follow',
              in: 'query',
              required: false,
              description: 'With `1`, the response stays open and new lines follow until the run ends.',
              schema: { type: 'string', enum: ['0', '1'] },
            },
          ],
          responses: {
            '200': {
              description: 'The log from `offset` (empty before the run starts).',
              headers: { 'X-Log-Size': { description: 'Bytes the run had printed when the answer began.', schema: { type: 'integer', minimum: 0 } } },
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
            '400': errorResponse('`offset` is not a whole number (code `invalid_request`).'),
            '404': errorResponse('No such run (code `not_found`).'),
            ...commonErrors,
          },
        },
      },
      '/api/runs/{id}/cancel': {
        post: {
          operationId: 'cancelRun',
          summary: 'Cancel a queued or running run; a running container is stopped',
          parameters: [runIdParameter],
          responses: {
            '200': { description: 'Cancelled.', content: json(ref('CancelRunResponse')) },
            '404': errorResponse('No such run (code `not_found`).'),
            '409': errorResponse('The run has already ended (code `conflict`).'),
            '422': errorResponse('The policy refused (code `refused`).'),
            ...commonErrors,
          },
        },
      },
      '/api/runs/{id}/pin': {
        post: {
          operationId: 'pinRun',
          summary: 'Keep a run’s outputs pinned until at least now + `duration` (never shortened; at most PIN_TTL_MAX)',
          description: 'The same use case as the `/pin <run-id> <duration>` comment: the write role on the run’s repository, recorded in the audit log.',
          parameters: [runIdParameter],
          requestBody: { required: true, content: json(ref('PinRunRequest')) },
          responses: {
            '200': { description: 'Pinned until `pinned_until`.', content: json(ref('PinRunResponse')) },
            '400': errorResponse('`duration` is not a duration, or passes PIN_TTL_MAX (code `invalid_request`, field `duration`).'),
            '404': errorResponse('No such run (code `not_found`).'),
            '409': errorResponse('Nothing of the run is pinned: it has not finished, added no outputs, or its pin ended and was collected (code `conflict`).'),
            '422': errorResponse('The policy refused (code `refused`).'),
            ...commonErrors,
          },
        },
      },
      '/api/runs/{id}/events': {
        get: {
          operationId: 'streamRunEvents',
          summary: 'Server-sent events of one run until it ends',
          description:
            'First `run.snapshot` (the run), then on each change of state the event of the new state — `run.queued`, `run.started` ' +
            '(running), `run.succeeded`, `run.failed`, `run.cancelled`, `run.timed_out` — carrying the run, and `run.log` events ' +
            'carrying `{ "line": "…" }` for each new log line. The stream ends after the final state. A comment line is sent every ' +
            '15 seconds to keep proxies from closing an idle stream.',
          parameters: [runIdParameter],
          responses: {
            '200': { description: 'The event stream.', content: { 'text/event-stream': { schema: { type: 'string' } } } },
            '404': errorResponse('No such run (code `not_found`).'),
            ...commonErrors,
          },
        },
      },
      '/api/events': {
        get: {
          operationId: 'streamAllEvents',
          summary: 'Server-sent events of every run the caller may read, from now on',
          description:
            'Each time a run is created or changes (state, outputs, pin), the event of its state — `run.queued`, `run.started` ' +
            '(running), `run.succeeded`, `run.failed`, `run.cancelled`, `run.timed_out` — carrying the run. Only runs of repositories ' +
            'the caller can read are sent (the read rule). A first comment line says the stream is watching: every change after it is ' +
            'sent. Changes are looked for every half second; the stream lasts until the client ' +
            'goes away, with a comment line every 15 seconds to keep proxies from closing it.',
          responses: {
            '200': { description: 'The event stream.', content: { 'text/event-stream': { schema: { type: 'string' } } } },
            ...commonErrors,
          },
        },
      },
      '/api/openapi.json': {
        get: {
          operationId: 'getOpenApi',
          summary: 'This document',
          security: [],
          responses: { '200': { description: 'The OpenAPI 3.1 document.', content: { 'application/json': { schema: { type: 'object' } } } } },
        },
      },
      '/rpc': {
        post: {
          operationId: 'jsonRpc',
          summary: 'JSON-RPC 2.0: runs.list, runs.get, runs.create, runs.cancel, runs.pin (params as in the JSON API; batches and notifications allowed)',
          description:
            'Errors: -32700 parse error, -32600 invalid request, -32601 method not found, -32602 invalid params, -32603 internal, ' +
            '-32001 unauthorized, -32004 not found, -32009 conflict, -32010 refused, -32011 unavailable; `error.data.code` is the JSON API’s error code.',
          requestBody: { required: true, content: { 'application/json': { schema: {} } } },
          responses: {
            '200': { description: 'The JSON-RPC response (an array for a batch).', content: { 'application/json': { schema: {} } } },
            '204': { description: 'Only notifications were sent: nothing to answer.' },
            '401': { description: 'No or an invalid bearer token (JSON-RPC error -32001).' },
          },
        },
      },
      '/metrics': {
        get: {
          operationId: 'getMetrics',
          summary: 'Prometheus metrics',
          security: [],
          responses: { '200': { description: 'Prometheus text exposition format 0.0.4.', content: { 'text/plain': { schema: { type: 'string' } } } } },
        },
      },
      '/ipfs/{cid}': {
        get: ipfsOperation('getIpfsContent', 'A pinned output by CID, or by CID and a path below it (`/ipfs/{cid}/{path}`): the IPFS gateway'),
        head: ipfsOperation('headIpfsContent', 'The headers GET would answer, without its body'),
      },
    },
  };
}
