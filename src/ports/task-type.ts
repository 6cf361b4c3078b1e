/**
 * The task-type interface (README "Writing a new task type"): a name, a zod schema for its
 * parameters, and `run(ctx, params)`. Built-in types live in the top-level `tasks/` folder, one
 * folder each, registered with one line in `tasks/index.ts`. The container tasks (`container`,
 * `procfile`) are task types like any other.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import type { OutputFile } from '../core/runs/run.js';
import type { Executor, SandboxLimits } from './executor.js';
import type { IpfsStore } from './ipfs-store.js';

export interface TaskProgress {
  done: number;
  total?: number;
  message?: string;
}

/** The outputs of a task this one `needs`. */
export interface TaskInput {
  /** Folder holding the needed task's outputs (read-only for the task). */
  dir: string;
  cid: string;
  files: OutputFile[];
  /** Metadata the needed task recorded (e.g. a ZIM file's title). */
  metadata: Record<string, unknown>;
}

/** Settings of the deployment that task types may need; never secrets of GitHub. */
export interface TaskSettings {
  /** Allow fetching from loopback, private and link-local addresses (off in production). */
  allowPrivateAddresses: boolean;
  /** Gateway for links in messages, e.g. https://ipfs.io. */
  gatewayUrl: string;
  /** SMTP server for notify/email, e.g. smtp://user:pass@mail.example:587. */
  smtpUrl?: string;
  /** Sender address for notify/email. */
  mailFrom?: string;
}

/** Options of one GET through the task's fetch. */
export interface FetchOptions {
  signal?: AbortSignal;
  /** Extra request headers (names as they should be sent), e.g. a task's own User-Agent. */
  headers?: Record<string, string>;
  /**
   * `follow` (default) follows up to 5 redirects, vetting each; `manual` returns a 3xx response
   * as it is, for crawlers that record each hop and decide themselves where to go.
   */
  redirect?: 'follow' | 'manual';
  /**
   * Called with each redirect response before it is followed, e.g. to write it to a WARC. Its
   * body may be read; whatever is left is discarded once the returned promise settles.
   */
  onRedirect?: (hop: FetchedResponse) => Promise<void> | void;
}

/** The request as it went on the wire, for WARC request records. */
export interface SentRequest {
  method: 'GET';
  url: URL;
  /** Request target, e.g. `/a/b?c`. */
  path: string;
  /** Header name/value pairs in sending order, Host first. */
  headers: [string, string][];
}

export interface FetchedResponse {
  /** URL this response answers (the final URL after redirects). */
  url: URL;
  status: number;
  statusText: string;
  /** e.g. `1.1` */
  httpVersion: string;
  /** Lower-cased header names, as Node parses them. */
  headers: IncomingHttpHeaders;
  /** Header name/value pairs as the server sent them (case and order kept). */
  rawHeaders: [string, string][];
  /** The body, streamed; consume or destroy it. Transfer-Encoding is already decoded. */
  body: Readable;
  /** The vetted address the connection went to. */
  remoteAddress: string | undefined;
  request: SentRequest;
  /** URLs that redirected here, in order (empty when none). */
  redirectedFrom: URL[];
}

/**
 * The only way a task type reaches the network (README "Security model"): GETs of http(s) URLs
 * whose every address, for the URL and each redirect, is public unicast (unless the deployment
 * allows private addresses), connecting to exactly the vetted addresses. Refusals and permanent
 * failures are PermanentErrors with a one-line message; transient ones RetryableErrors.
 */
export interface TaskFetch {
  get(url: string | URL, options?: FetchOptions): Promise<FetchedResponse>;
}

/** One message for TaskMailer.send. */
export interface MailMessage {
  from: string;
  to: string[];
  cc: string[];
  subject: string;
  text: string;
  html: string;
  headers?: Record<string, string>;
}

export interface SentMail {
  messageId: string;
  accepted: string[];
  rejected: string[];
  /** The server's last reply. */
  response: string;
  /** Why each rejected recipient was refused, one line (empty when none was). */
  refusals: string;
}

/**
 * Mail through the deployment's SMTP server (`SMTP_URL`), and nowhere else: a manifest names
 * recipients, never a server. A send is cut short when its signal aborts.
 */
export interface TaskMailer {
  /** The server as logs may show it (no password); throws a PermanentError when SMTP_URL is unusable. */
  server(): string;
  /** Removes the SMTP password from any text that leaves the task. */
  redact(text: string): string;
  send(message: MailMessage, signal: AbortSignal): Promise<SentMail>;
}

export interface TaskContext {
  runId: string;
  /** Aborted on cancel or timeout: stop promptly and clean up. */
  signal: AbortSignal;
  /**
   * One line of the run's log (shown in the check run's tail). While the log store is behind,
   * the worker's logger returns a promise: a type printing many lines may await it, and given
   * to the executor as `onLog` it holds back the container's output (back-pressure). Typed
   * `void` so that any logger fits.
   */
  log: (line: string) => void;
  /** Progress shown in the check run while running; calls may be coalesced. */
  progress: (progress: TaskProgress) => void;
  ipfs: IpfsStore;
  executor: Executor;
  /** Everything written here is the task's output, added to IPFS as one folder. */
  outDir: string;
  /** Scratch space, deleted after the run. */
  scratchDir: string;
  /** The repository at the pinned SHA. */
  sourceDir: string;
  /** Outputs of needed tasks, by task name. */
  inputs: Record<string, TaskInput>;
  /** Sandbox limits for container work (from the manifest or the deployment's defaults). */
  limits: SandboxLimits;
  /** Environment for containers: TASK_RUN_ID and TASK_PARAM_* (never a secret). */
  env: Record<string, string>;
  settings: TaskSettings;
  /**
   * The guarded fetch, wired by the worker; task types import no network module themselves
   * (`npm run boundaries`). A type declared `network: false` gets one that refuses every URL.
   */
  fetch: TaskFetch;
  /** The deployment's mailer, when SMTP_URL is set. */
  mail?: TaskMailer;
  /**
   * For types that start a container: call (or pass to the executor as `beforeStart`) just before
   * it starts, so the worker can check once more that the run is still allowed. The worker calls
   * it itself before `run` for every other type.
   */
  beforeStart?: () => Promise<void>;
}

export interface TaskResult {
  /** Default succeeded. */
  state?: 'succeeded' | 'failed' | 'timed_out' | 'cancelled';
  exitCode?: number | null;
  /** Why it failed, in one sentence a user understands. */
  error?: string;
  /** Facts about the outputs worth keeping with the run (title, language, counts…). */
  metadata?: Record<string, unknown>;
  /** The image the task ran in, for the provenance record (types that start a container). */
  image?: { id: string; baseDigest: string | null };
}

export interface TaskType<Params = unknown> {
  /** As written in `uses:`, e.g. `ipfs/add-url`. */
  name: string;
  /** One line for `/help` and `task-mgmt validate`. */
  description: string;
  /** Parameters (`with:` in the manifest), validated before anything is queued. */
  params: z.ZodType<Params>;
  /** Whether the type fetches from the network (only the hosts its parameters name). */
  network: boolean;
  /** Whether the type needs the repository's files (`ctx.sourceDir`); others skip the download. */
  needsSource?: boolean;
  /** Whether the type starts a container and calls `ctx.beforeStart` itself. */
  startsContainer?: boolean;
  run(ctx: TaskContext, params: Params): Promise<TaskResult>;
}

/** A task type of any parameter shape, as registries hold them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTaskType = TaskType<any>;
