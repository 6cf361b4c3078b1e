/**
 * `notify/email`: mails the CIDs of the tasks this one `needs` (DESIGN "Built-in types"), as
 * plain text and HTML, through the deployment's SMTP server (`SMTP_URL`).
 */
import { writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import type SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { z } from 'zod';
import { PermanentError, RetryableError, errorMessage } from '../../../src/ports/errors.js';
import { formatSize } from '../../../src/ports/units.js';
import type { TaskContext, TaskInput, TaskResult, TaskType } from '../../../src/ports/task-type.js';

const maxRecipients = 50;
const maxListedFiles = 100;
const maxMetadataChars = 500;
const defaultFrom = 'task-mgmt@localhost';
/** How long to wait for the TCP connection and each server reply, unless SMTP_URL says otherwise. */
const connectionTimeoutMs = 30_000;
const socketTimeoutMs = 60_000;

const address = z.email({ error: (issue) => `${JSON.stringify(issue.input)} is not an email address` });

function addressList(field: string) {
  return z
    .array(address, { error: `${field} must be a list of email addresses` })
    .min(1, `${field} needs at least one address`)
    .max(maxRecipients, `${field} takes at most ${maxRecipients} addresses`);
}

export const notifyEmailParams = z.strictObject(
  {
    /** Recipients (1 to 50 addresses). */
    to: addressList('to'),
    /** Subject line; by default it names the run id and the number of outputs. */
    subject: z
      .string({ error: 'subject must be a string' })
      .trim()
      .min(1, 'subject must not be empty')
      .max(200, 'subject takes at most 200 characters')
      .refine((subject) => !/[\r\n]/.test(subject), 'subject must be one line')
      .optional(),
    /** Copy recipients (up to 50 addresses). */
    cc: addressList('cc').optional(),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown parameter ${issue.keys.join(', ')}: notify/email takes to, subject and cc` : undefined) },
);

export type NotifyEmailParams = z.infer<typeof notifyEmailParams>;

/** What the task writes to its output folder: the facts of the delivery, never a secret. */
export interface EmailRecord {
  messageId: string;
  from: string;
  to: string[];
  cc: string[];
  subject: string;
  accepted: string[];
  rejected: string[];
}

export const notifyEmail: TaskType<NotifyEmailParams> = {
  name: 'notify/email',
  description: 'Mail the CIDs of the tasks this one needs (SMTP)',
  params: notifyEmailParams,
  network: false,
  run: sendNotification,
};

async function sendNotification(ctx: TaskContext, params: NotifyEmailParams): Promise<TaskResult> {
  ctx.signal.throwIfAborted();
  const server = smtpServer(ctx.settings.smtpUrl);
  const inputs = Object.entries(ctx.inputs);
  const gateway = ctx.settings.gatewayUrl.replace(/\/+$/, '');
  const message = {
    from: ctx.settings.mailFrom ?? defaultFrom,
    to: params.to,
    cc: params.cc ?? [],
    subject: params.subject ?? defaultSubject(ctx.runId, inputs.length),
  };

  ctx.progress({ done: 0, total: 1, message: 'sending the mail' });
  ctx.log(`mailing ${describeInputs(inputs.length)} to ${message.to.length + message.cc.length} recipients through ${server.display}`);
  const info = await deliver(ctx.signal, server, {
    ...message,
    text: textBody(ctx.runId, inputs, gateway),
    html: htmlBody(ctx.runId, inputs, gateway),
    headers: {
      // RFC 3834: tells auto-responders not to answer a machine's mail.
      'Auto-Submitted': 'auto-generated',
      'X-Task-Mgmt-Run': ctx.runId,
    },
  });

  const record: EmailRecord = {
    messageId: info.messageId,
    ...message,
    accepted: info.accepted.map(String),
    rejected: info.rejected.map(String),
  };
  await writeFile(join(ctx.outDir, 'email.json'), `${JSON.stringify(record, null, 2)}\n`);
  ctx.progress({ done: 1, total: 1, message: 'mail sent' });
  const metadata = { messageId: record.messageId, accepted: record.accepted, rejected: record.rejected };

  if (record.rejected.length > 0) {
    // Some recipients got the mail already, so sending again is no remedy: fail without retry.
    const error = server.redact(
      `the SMTP server refused ${record.rejected.length} of ${record.accepted.length + record.rejected.length} recipients: ${refusals(info.rejectedErrors)}`,
    );
    ctx.log(error);
    return { state: 'failed', error, metadata };
  }
  ctx.log(server.redact(`mail ${record.messageId} accepted for ${record.accepted.join(', ')}: ${info.response}`));
  return { metadata };
}

function defaultSubject(runId: string, outputs: number): string {
  return `task-mgmt run ${runId}: ${describeInputs(outputs)} on IPFS`;
}

function describeInputs(count: number): string {
  return count === 1 ? '1 output' : `${count} outputs`;
}

// --- SMTP ---------------------------------------------------------------------------------

interface SmtpServer {
  url: string;
  /** The URL as logs may show it: no password, no query. */
  display: string;
  /** Removes the password from any text that leaves the task. */
  redact(text: string): string;
}

function smtpServer(smtpUrl: string | undefined): SmtpServer {
  if (!smtpUrl) throw new PermanentError('notify/email needs SMTP_URL to be configured');
  let url: URL;
  try {
    url = new URL(smtpUrl);
  } catch {
    // Never echo the value: it may hold the password.
    throw new PermanentError('SMTP_URL is not a URL: use smtp://user:password@host:587 or smtps://host:465');
  }
  if ((url.protocol !== 'smtp:' && url.protocol !== 'smtps:') || !url.hostname) {
    throw new PermanentError('SMTP_URL must be smtp://host[:port] or smtps://host[:port]');
  }
  const secrets = [url.password, safeDecode(url.password)].filter((secret) => secret.length > 0);
  const user = url.username ? `${url.username}${url.password ? ':***' : ''}@` : '';
  return {
    url: smtpUrl,
    display: `${url.protocol}//${user}${url.host}`,
    redact(text) {
      return secrets.reduce((redacted, secret) => redacted.split(secret).join('***'), text);
    },
  };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Sends one message. Nodemailer's transport cannot stop a send in flight (its `close()` only
 * drops idle pooled connections), so the task opens the TCP connection itself and destroys it
 * on abort; nodemailer still does TLS, STARTTLS and login on top of it.
 */
async function deliver(
  signal: AbortSignal,
  server: SmtpServer,
  message: SMTPTransport.Options & { to: string[]; cc: string[] },
): Promise<SentInfo> {
  const sockets = new Set<Socket>();
  const options: SMTPTransport.Options = {
    url: server.url,
    connectionTimeout: connectionTimeoutMs,
    greetingTimeout: connectionTimeoutMs,
    socketTimeout: socketTimeoutMs,
    logger: false,
    getSocket(options, callback) {
      openSocket(options, signal, sockets).then(
        (socket) => callback(null, { connection: socket }),
        (error: unknown) => callback(error instanceof Error ? error : new Error(String(error)), null),
      );
    },
  };
  // Built directly: createTransport({ url, ... }) would keep the URL's options and drop the rest.
  const transport = nodemailer.createTransport(new SMTPTransport(options));
  const onAbort = () => {
    transport.close();
    for (const socket of sockets) socket.destroy();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await transport.sendMail(message);
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw sendFailure(error, server);
  } finally {
    signal.removeEventListener('abort', onAbort);
    onAbort();
  }
}

function openSocket(options: SMTPTransport.Options, signal: AbortSignal, sockets: Set<Socket>): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const host = options.host ?? 'localhost';
    // Nodemailer's own defaults when the URL names no port.
    const port = options.port ?? (options.secure ? 465 : 587);
    const socket = connect({ host, port });
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const timer = setTimeout(() => {
      socket.destroy();
      fail(Object.assign(new Error(`no connection after ${(options.connectionTimeout ?? connectionTimeoutMs) / 1000} s`), { code: 'ETIMEDOUT' }));
    }, options.connectionTimeout ?? connectionTimeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      resolve(socket);
    });
  });
}

type SmtpError = SMTPConnection.SMTPError & { rejectedErrors?: SMTPConnection.SMTPError[] };
/** Nodemailer's typings leave out the per-recipient errors it reports with a partial success. */
type SentInfo = SMTPTransport.SentMessageInfo & { rejectedErrors?: SMTPConnection.SMTPError[] };

const unreachable = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNECTION', 'ESOCKET', 'EDNS']);

/** A failed send as the worker needs it: retryable when the server or the network may recover. */
function sendFailure(error: unknown, server: SmtpServer): Error {
  const smtpError = error as Partial<SmtpError>;
  const where = server.display;
  const code = smtpError.code ?? '';
  const reply = smtpError.response ?? errorMessage(error);
  const cause = { cause: error };
  if (code === 'EAUTH') return new PermanentError(server.redact(`the SMTP server ${where} refused the login: ${reply}`), cause);
  if (code === 'EENVELOPE' && smtpError.rejectedErrors?.length) {
    const temporary = smtpError.rejectedErrors.every((rejection) => isTemporary(rejection.responseCode));
    const text = server.redact(`the SMTP server ${where} refused every recipient: ${refusals(smtpError.rejectedErrors)}`);
    return temporary ? new RetryableError(text, cause) : new PermanentError(text, cause);
  }
  if (smtpError.responseCode !== undefined) {
    const text = server.redact(`the SMTP server ${where} did not take the mail: ${reply}`);
    return isTemporary(smtpError.responseCode) ? new RetryableError(text, cause) : new PermanentError(text, cause);
  }
  if (unreachable.has(code)) {
    return new RetryableError(server.redact(`could not reach the SMTP server ${where}: ${errorMessage(error)}`), cause);
  }
  return new PermanentError(server.redact(`sending the mail through ${where} failed: ${errorMessage(error)}`), cause);
}

/** SMTP's 4xx replies say "try again later" (RFC 5321 section 4.2.1). */
function isTemporary(responseCode: number | undefined): boolean {
  return responseCode !== undefined && responseCode >= 400 && responseCode < 500;
}

function refusals(errors: SMTPConnection.SMTPError[] | undefined): string {
  return (errors ?? []).map((rejection) => `${(rejection as { recipient?: string }).recipient ?? 'a recipient'} (${rejection.response ?? rejection.message})`).join('; ');
}

// --- Bodies -------------------------------------------------------------------------------

/** Control and bidirectional-override characters, which could forge lines or reorder text. */
const unsafeCharacters = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function printable(text: string): string {
  return text.replace(unsafeCharacters, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function escapeHtml(text: string): string {
  return printable(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function metadataValue(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value); // a BigInt or a cycle
  }
  return text.length > maxMetadataChars ? `${text.slice(0, maxMetadataChars)}…` : text;
}

/** A task may write 30,000 files: the mail lists the first ones and points to the folder for the rest. */
function listed(input: TaskInput): { files: TaskInput['files']; more: string | null } {
  const files = input.files.slice(0, maxListedFiles);
  const rest = input.files.length - files.length;
  return { files, more: rest > 0 ? `… and ${rest} more (see the folder on the gateway)` : null };
}

function fileLink(gateway: string, file: TaskInput['files'][number]): string {
  const link = `${gateway}/ipfs/${file.cid}`;
  return file.kind === 'file' ? `${link}?filename=${encodeURIComponent(file.name)}` : link;
}

function fileSize(file: TaskInput['files'][number]): string {
  return file.kind === 'file' ? formatSize(file.size) : file.kind;
}

function intro(runId: string, count: number): string {
  return count === 0
    ? `Run ${runId} finished. This task needs no other task, so there are no outputs to list.`
    : `Run ${runId} published ${describeInputs(count)} on IPFS.`;
}

function textBody(runId: string, inputs: [string, TaskInput][], gateway: string): string {
  const lines = [intro(runId, inputs.length)];
  for (const [name, input] of inputs) {
    lines.push('', `${printable(name)}`, `  ipfs://${printable(input.cid)}`, `  ${gateway}/ipfs/${printable(input.cid)}`);
    if (input.files.length > 0) {
      const { files, more } = listed(input);
      lines.push('  Files:');
      for (const file of files) {
        const suffix = file.kind === 'directory' ? '/' : '';
        lines.push(`    ${printable(file.name)}${suffix}  ${fileSize(file)}  ${printable(file.cid)}`, `      ${printable(fileLink(gateway, file))}`);
      }
      if (more) lines.push(`    ${more}`);
    } else {
      lines.push('  No files.');
    }
    const metadata = Object.entries(input.metadata);
    if (metadata.length > 0) {
      lines.push('  Metadata:');
      for (const [key, value] of metadata) lines.push(`    ${printable(key)}: ${printable(metadataValue(value))}`);
    }
  }
  lines.push('', '-- ', 'Sent by task-mgmt (notify/email).', '');
  return lines.join('\n');
}

function htmlBody(runId: string, inputs: [string, TaskInput][], gateway: string): string {
  const link = (href: string, text: string) => `<a href="${escapeHtml(href)}">${escapeHtml(text)}</a>`;
  const parts = [`<p>${escapeHtml(intro(runId, inputs.length))}</p>`];
  for (const [name, input] of inputs) {
    const root = `${gateway}/ipfs/${input.cid}`;
    parts.push(
      `<h2>${escapeHtml(name)}</h2>`,
      `<p><code>ipfs://${escapeHtml(input.cid)}</code><br>${link(root, root)}</p>`,
    );
    if (input.files.length > 0) {
      parts.push('<table>', '<tr><th align="left">file</th><th align="left">CID</th><th align="right">size</th></tr>');
      const { files, more } = listed(input);
      for (const file of files) {
        const suffix = file.kind === 'directory' ? '/' : '';
        parts.push(
          `<tr><td>${escapeHtml(file.name + suffix)}</td><td>${link(fileLink(gateway, file), file.cid)}</td><td align="right">${escapeHtml(fileSize(file))}</td></tr>`,
        );
      }
      if (more) parts.push(`<tr><td colspan="3">${escapeHtml(more)}</td></tr>`);
      parts.push('</table>');
    } else {
      parts.push('<p>No files.</p>');
    }
    const metadata = Object.entries(input.metadata);
    if (metadata.length > 0) {
      parts.push('<dl>');
      for (const [key, value] of metadata) parts.push(`<dt>${escapeHtml(key)}</dt><dd>${escapeHtml(metadataValue(value))}</dd>`);
      parts.push('</dl>');
    }
  }
  parts.push('<p><small>Sent by task-mgmt (notify/email).</small></p>');
  return `<!doctype html>\n<html><body>\n${parts.join('\n')}\n</body></html>\n`;
}
