/**
 * The mailer behind `ctx.mail` (README "Built-in task types": `notify/email`): sends through the
 * deployment's SMTP server (`SMTP_URL`) and nowhere else. Only the worker builds one
 * (src/worker/tasks/); task types get it in their context. Nodemailer's transport cannot stop a
 * send in flight, so the TCP connection is opened here and destroyed when the run is cancelled.
 * Failures come out as the worker needs them: retryable when the server or the network may
 * recover, permanent otherwise, and never with the password.
 */
import { connect, type Socket } from 'node:net';
import nodemailer from 'nodemailer';
import type SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { PermanentError, RetryableError, errorMessage } from '../../src/ports/errors.js';
import type { MailMessage, TaskMailer } from '../../src/ports/task-type.js';

/** How long to wait for the TCP connection and each server reply, unless SMTP_URL says otherwise. */
const connectionTimeoutMs = 30_000;
const socketTimeoutMs = 60_000;


export interface SmtpServer {
  url: string;
  /** The URL as logs may show it: no password, no query. */
  display: string;
  /** Removes the password from any text that leaves the task. */
  redact(text: string): string;
}

/** Reads SMTP_URL; the errors never echo it, since it may hold the password. */
export function smtpServer(smtpUrl: string): SmtpServer {
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

/**
 * The mailer a task's context holds when SMTP_URL is set. An unusable SMTP_URL is reported when
 * the task first asks for the server, so that only a task that mails fails over it.
 */
export function smtpMailer(smtpUrl: string): TaskMailer {
  let server: SmtpServer | undefined;
  let problem: unknown;
  try {
    server = smtpServer(smtpUrl);
  } catch (error) {
    problem = error;
  }
  const usable = (): SmtpServer => {
    if (!server) throw problem;
    return server;
  };
  return {
    server: () => usable().display,
    redact: (text) => (server ? server.redact(text) : text),
    async send(message, signal) {
      const info = await deliver(signal, usable(), message);
      return {
        messageId: info.messageId,
        accepted: info.accepted.map(String),
        rejected: info.rejected.map(String),
        response: info.response,
        refusals: refusals(info.rejectedErrors),
      };
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
 * drops idle pooled connections), so this module opens the TCP connection itself and destroys it
 * on abort; nodemailer still does TLS, STARTTLS and login on top of it.
 */
export async function deliver(signal: AbortSignal, server: SmtpServer, message: MailMessage): Promise<SentInfo> {
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
export type SentInfo = SMTPTransport.SentMessageInfo & { rejectedErrors?: SMTPConnection.SMTPError[] };

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

export function refusals(errors: SMTPConnection.SMTPError[] | undefined): string {
  return (errors ?? []).map((rejection) => `${(rejection as { recipient?: string }).recipient ?? 'a recipient'} (${rejection.response ?? rejection.message})`).join('; ');
}
