/**
 * `notify/email`: mails the CIDs of the tasks this one `needs` (README "Built-in task types"), as
 * plain text and HTML, through the deployment's SMTP server (`SMTP_URL`).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { PermanentError } from '../../../src/ports/errors.js';
import type { TaskContext, TaskInput, TaskResult, TaskType } from '../../../src/ports/task-type.js';
import { formatSize } from '../../../src/ports/units.js';

const maxRecipients = 50;
const maxListedFiles = 100;
const maxMetadataChars = 500;
const defaultFrom = 'task-mgmt@localhost';

const address = z
  .email({ error: (issue) => `${JSON.stringify(issue.input)} is not an email address` })
  .max(254, 'is longer than an email address may be (254 characters)');

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
  const mailer = ctx.mail;
  if (!mailer) throw new PermanentError('notify/email needs SMTP_URL to be configured');
  const server = mailer.server();
  const inputs = Object.entries(ctx.inputs);
  const gateway = ctx.settings.gatewayUrl.replace(/\/+$/, '');
  const message = {
    from: ctx.settings.mailFrom ?? defaultFrom,
    to: params.to,
    cc: params.cc ?? [],
    subject: params.subject ?? defaultSubject(ctx.runId, inputs.length),
  };

  ctx.progress({ done: 0, total: 1, message: 'sending the mail' });
  ctx.log(`mailing ${describeInputs(inputs.length)} to ${message.to.length + message.cc.length} recipients through ${server}`);
  const info = await mailer.send(
    {
      ...message,
      text: textBody(ctx.runId, inputs, gateway),
      html: htmlBody(ctx.runId, inputs, gateway),
      headers: {
        // RFC 3834: tells auto-responders not to answer a machine's mail.
        'Auto-Submitted': 'auto-generated',
        'X-Task-Mgmt-Run': ctx.runId,
      },
    },
    ctx.signal,
  );

  const record: EmailRecord = { messageId: info.messageId, ...message, accepted: info.accepted, rejected: info.rejected };
  await writeFile(join(ctx.outDir, 'email.json'), `${JSON.stringify(record, null, 2)}\n`);
  ctx.progress({ done: 1, total: 1, message: 'mail sent' });
  const metadata = { messageId: record.messageId, accepted: record.accepted, rejected: record.rejected };

  if (record.rejected.length > 0) {
    // Some recipients got the mail already, so sending again is no remedy: fail without retry.
    const error = mailer.redact(
      `the SMTP server refused ${record.rejected.length} of ${record.accepted.length + record.rejected.length} recipients: ${info.refusals}`,
    );
    ctx.log(error);
    return { state: 'failed', error, metadata };
  }
  ctx.log(mailer.redact(`mail ${record.messageId} accepted for ${record.accepted.join(', ')}: ${info.response}`));
  return { metadata };
}

function defaultSubject(runId: string, outputs: number): string {
  return `task-mgmt run ${runId}: ${describeInputs(outputs)} on IPFS`;
}

function describeInputs(count: number): string {
  return count === 1 ? '1 output' : `${count} outputs`;
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
