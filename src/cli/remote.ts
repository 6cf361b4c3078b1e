/**
 * `task-mgmt runs`, `task-mgmt logs` and `task-mgmt cancel`: the command line that talks to a
 * running app through its JSON API (TASK_MGMT_URL, with TASK_MGMT_TOKEN as the bearer token: a
 * service token or a GitHub user token). Each prints lines for people, or with `--json` the API's
 * JSON (one object per line when it follows). Errors are one line; exit 0 on success, 1 when the
 * app refused or failed, 2 on a usage error.
 */
import { parseArgs } from 'node:util';

export interface RemoteIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

export interface RemoteDeps {
  env: Readonly<Record<string, string | undefined>>;
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

export type RemoteCommand = 'runs' | 'logs' | 'cancel';

class UsageError extends Error {}
class Failure extends Error {}

interface RunJson {
  id: string;
  state: string;
  repo: string;
  task: string;
  requested_by: string;
  created_at: string;
  number: number | null;
}

export function remote(command: RemoteCommand, argv: readonly string[]): Promise<number> {
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  return remoteCommand(command, argv, { out: (text) => process.stdout.write(text), err: (text) => console.error(text) }, { env: process.env, signal: stop.signal });
}

export async function remoteCommand(command: RemoteCommand, argv: readonly string[], io: RemoteIo, deps: RemoteDeps): Promise<number> {
  try {
    const client = new ApiClient(deps);
    switch (command) {
      case 'runs':
        return await runs(argv, io, client);
      case 'logs':
        return await logs(argv, io, client);
      case 'cancel':
        return await cancel(argv, io, client);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`task-mgmt ${command}: ${error.message}`);
      return 2;
    }
    if (error instanceof Failure) {
      io.err(`task-mgmt ${command}: ${error.message}`);
      return 1;
    }
    if (deps.signal?.aborted) return 0;
    throw error;
  }
}

function parse(argv: readonly string[], options: Record<string, { type: 'string' | 'boolean' }>, positionals: number): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const parsed = parseArgs({ args: [...argv], options: { ...options, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
    if (parsed.positionals.length !== positionals) throw new UsageError(positionals === 0 ? 'takes no arguments besides its options' : 'give one run id');
    return parsed;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

async function runs(argv: readonly string[], io: RemoteIo, client: ApiClient): Promise<number> {
  const { values } = parse(argv, { state: { type: 'string' }, repo: { type: 'string' }, follow: { type: 'boolean' } }, 0);
  const query = new URLSearchParams({ limit: '50' });
  if (typeof values.state === 'string') query.set('state', values.state);
  if (typeof values.repo === 'string') query.set('repo', values.repo);
  const body = (await client.json(`/api/runs?${query}`)) as { runs: RunJson[] };
  if (values.json) io.out(`${JSON.stringify(body)}\n`);
  else for (const run of body.runs) io.out(`${runLine(run)}\n`);
  if (!values.follow) return 0;
  // From now on: every change of a run the token may read, as the filters allow.
  for await (const event of client.events('/api/events')) {
    const run = event.data as RunJson;
    if (typeof values.state === 'string' && run.state !== values.state) continue;
    if (typeof values.repo === 'string' && run.repo !== values.repo) continue;
    io.out(values.json ? `${JSON.stringify({ event: event.name, run })}\n` : `${runLine(run)}\n`);
  }
  return 0;
}

async function logs(argv: readonly string[], io: RemoteIo, client: ApiClient): Promise<number> {
  const { values, positionals } = parse(argv, { follow: { type: 'boolean' } }, 1);
  const id = encodeURIComponent(positionals[0]!);
  if (values.json) {
    // One {"line": …} per log line; following, also the run's state changes.
    if (values.follow) {
      const text = await client.text(`/api/runs/${id}/logs`);
      for (const line of splitLines(text)) io.out(`${JSON.stringify({ line })}\n`);
      for await (const event of client.events(`/api/runs/${id}/events`)) {
        if (event.name === 'run.snapshot') continue;
        io.out(`${JSON.stringify(event.name === 'run.log' ? event.data : { event: event.name, state: (event.data as RunJson).state })}\n`);
      }
      return 0;
    }
    for (const line of splitLines(await client.text(`/api/runs/${id}/logs`))) io.out(`${JSON.stringify({ line })}\n`);
    return 0;
  }
  for await (const chunk of client.stream(`/api/runs/${id}/logs${values.follow ? '?follow=1' : ''}`)) io.out(chunk);
  return 0;
}

async function cancel(argv: readonly string[], io: RemoteIo, client: ApiClient): Promise<number> {
  const { values, positionals } = parse(argv, {}, 1);
  const body = (await client.json(`/api/runs/${encodeURIComponent(positionals[0]!)}/cancel`, { method: 'POST' })) as { run: RunJson };
  io.out(values.json ? `${JSON.stringify(body)}\n` : `cancelled ${body.run.id} (${body.run.repo} ${body.run.task})\n`);
  return 0;
}

function runLine(run: RunJson): string {
  const where = run.number !== null ? `${run.repo}#${run.number}` : run.repo;
  return [run.id, run.state.padEnd(9), where, run.task, run.requested_by, run.created_at].join('  ');
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

class ApiClient {
  private readonly base: string;
  private readonly token: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly deps: RemoteDeps) {
    const url = deps.env.TASK_MGMT_URL;
    if (!url) throw new UsageError('set TASK_MGMT_URL to the app’s address (e.g. https://task-mgmt.example)');
    if (!/^https?:\/\//.test(url)) throw new UsageError(`TASK_MGMT_URL must start with http:// or https://, got "${url}"`);
    const token = deps.env.TASK_MGMT_TOKEN;
    if (!token) throw new UsageError('set TASK_MGMT_TOKEN to a service token (API_TOKENS) or your GitHub user token');
    this.base = url.replace(/\/+$/, '');
    this.token = token;
    this.fetch = deps.fetch ?? fetch;
  }

  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    let response: Response;
    try {
      response = await this.fetch(`${this.base}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${this.token}`, accept: 'application/json', ...(init.headers ?? {}) },
        redirect: 'error',
        ...(this.deps.signal ? { signal: this.deps.signal } : {}),
      });
    } catch (error) {
      if (this.deps.signal?.aborted) throw error;
      throw new Failure(`could not reach ${this.base}: ${error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error)}`);
    }
    if (!response.ok) {
      const text = await response.text().catch(() => '');
      let message = `the app answered ${response.status}`;
      try {
        const body = JSON.parse(text) as { error?: { message?: string } };
        if (body.error?.message) message = body.error.message;
      } catch {
        // not the API's JSON: the status says it
      }
      throw new Failure(message);
    }
    return response;
  }

  async json(path: string, init?: RequestInit): Promise<unknown> {
    return (await this.request(path, init)).json();
  }

  async text(path: string): Promise<string> {
    return (await this.request(path)).text();
  }

  async *stream(path: string): AsyncGenerator<string> {
    const response = await this.request(path);
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) yield decoder.decode(chunk, { stream: true });
    const rest = decoder.decode();
    if (rest) yield rest;
  }

  /** Server-sent events, as (name, parsed data). */
  async *events(path: string): AsyncGenerator<{ name: string; data: unknown }> {
    let buffer = '';
    for await (const text of this.stream(path)) {
      buffer += text;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (block.startsWith(':')) continue;
        const name = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (data !== undefined) yield { name, data: JSON.parse(data) as unknown };
      }
    }
  }
}
