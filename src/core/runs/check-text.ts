/**
 * What a run's check run says, as pure functions of the run. GitHub caps `summary` and `text`
 * at 65,535 characters: texts are cut to fit, never rejected for length.
 * https://docs.github.com/en/rest/checks/runs#create-a-check-run
 *
 * A summary is Markdown, and much of what it shows was written by someone else: a manifest's
 * fields and the YAML errors quoting them, the progress message and the files a task wrote, a
 * run's error (which may carry a build's or a task's words). All of it goes through `quote()`,
 * as replies do, so it cannot mention, reference, link or format; the log in `text` sits in a
 * fence longer than any inside it.
 */
import type { CheckAction, CheckReport } from '../../ports/check-reporter.js';
import { quote } from '../text/quote.js';
import type { Run } from './run.js';
import { formatDuration, formatSize } from './units.js';

export const checkTextLimit = 65_535;

export function checkRunName(run: Pick<Run, 'task'>): string {
  return `task-mgmt / ${run.task}`;
}

export function truncateStart(text: string, limit = checkTextLimit): string {
  if (text.length <= limit) return text;
  const marker = '… (earlier lines cut)\n';
  return marker + text.slice(text.length - (limit - marker.length));
}

/**
 * Keeps the start, cut at the end of a line when there is one: a quoted text never spans lines,
 * so the cut never leaves a code span open (an open span's text would be read as Markdown).
 */
export function truncateEnd(text: string, limit = checkTextLimit): string {
  if (text.length <= limit) return text;
  const marker = '\n… (cut to fit)';
  const lineEnd = text.lastIndexOf('\n', limit - marker.length);
  return text.slice(0, lineEnd > 0 ? lineEnd : limit - marker.length) + marker;
}

/** Longest a quoted error or manifest message may be in a summary; shorter texts use quote's own. */
const longTextChars = 1_000;

function logBlock(logTail: string | null): string | undefined {
  if (!logTail) return undefined;
  // A fence longer than any run of backticks in the log keeps the log from closing it.
  const longest = Math.max(2, ...(logTail.match(/`+/g) ?? []).map((ticks) => ticks.length));
  const fence = '`'.repeat(longest + 1);
  const overhead = fence.length * 2 + 20;
  return `${fence}text\n${truncateStart(logTail, checkTextLimit - overhead)}\n${fence}`;
}

/** The button that cancels a queued or running run (GitHub allows 20/40/20 characters). */
export const cancelAction: CheckAction = { label: 'Cancel', description: 'Stop this run', identifier: 'cancel' };

export function queuedReport(run: Pick<Run, 'id' | 'sha' | 'requestedBy' | 'approvals'>): CheckReport {
  return {
    status: 'queued',
    title: 'Queued',
    summary: truncateEnd(`Queued by @${run.requestedBy} at \`${run.sha}\`${approvedBy(run)}.\n\nRun id: \`${run.id}\` · cancel with \`/cancel ${run.id}\``),
    actions: [cancelAction],
  };
}

export function startedReport(run: Run): CheckReport {
  return {
    status: 'in_progress',
    title: 'Running',
    summary: truncateEnd(`Running at \`${run.sha}\`, asked for by @${run.requestedBy}${approvedBy(run)}.\n\nRun id: \`${run.id}\` · cancel with \`/cancel ${run.id}\``),
    actions: [cancelAction],
  };
}

/** A running run's progress, as the task reported it. */
export function progressReport(run: Run, progress: { done: number; total?: number; message?: string }): CheckReport {
  const of = progress.total !== undefined && progress.total > 0 ? ` of ${progress.total} (${Math.floor((progress.done / progress.total) * 100)}%)` : '';
  return {
    ...startedReport(run),
    summary: truncateEnd(`${startedReport(run).summary}\n\n**Progress:** ${progress.done}${of}${progress.message ? ` — ${quote(progress.message)}` : ''}`),
  };
}

/**
 * A command held until a review: says exactly what is missing (who may approve, which SHA). The
 * reason comes from the policy, which quotes the file names in it; the rest is logins and SHAs.
 */
export function approvalNeededReport(reason: string, sha: string): CheckReport {
  return {
    status: 'completed',
    conclusion: 'action_required',
    title: 'Waiting for an approving review',
    summary: truncateEnd(`Nothing ran: ${reason}\n\nThe review must be on \`${sha}\`; a new push needs a new approval.`),
    actions: [],
  };
}

/** An approval request made moot by new commits. */
export function staleApprovalReport(sha: string, newHead: string): CheckReport {
  return {
    status: 'completed',
    conclusion: 'action_required',
    title: 'Stale: new commits were pushed',
    summary: truncateEnd(
      `This request to run \`${sha}\` is stale: the pull request's head is now \`${newHead}\`. ` +
        'An approval of the new head and a new `/run` are needed.',
    ),
    actions: [],
  };
}

/** A request waiting for an approval of a pull request that was then closed or merged. */
export function closedApprovalReport(sha: string, why: string): CheckReport {
  return {
    status: 'completed',
    conclusion: 'cancelled',
    title: `Ended: ${why}`,
    summary: truncateEnd(`This request to run \`${sha}\` ended without running: ${why}. Nothing runs for a closed pull request; reopen it and comment \`/run\` to ask again.`),
    actions: [],
  };
}

function approvedBy(run: Pick<Run, 'approvals'>): string {
  // A review id is no issue number: written `#id`, GitHub would link it to whatever issue has it.
  return run.approvals.length > 0 ? ` (approving reviews ${run.approvals.map((approval) => `\`${approval.reviewId}\``).join(', ')})` : '';
}

export function finishedReport(run: Run, gatewayUrl: string): CheckReport {
  const duration = run.startedAt && run.finishedAt ? formatDuration(run.finishedAt.getTime() - run.startedAt.getTime()) : 'unknown';
  const lines: string[] = [];
  const conclusion = conclusionOf(run);
  const title = titles[run.state] ?? run.state;
  lines.push(`**${title}** in ${duration} · exit code ${run.exitCode ?? 'none'} · run \`${run.id}\` at \`${run.sha.slice(0, 12)}\``);
  if (run.error) lines.push('', `> ${quote(run.error, longTextChars)}`);
  // Before the outputs, whose list may be cut to fit: the record is what lets anyone check them.
  if (run.provenanceCid) {
    const cid = run.provenanceCid;
    lines.push('', `Provenance: \`${cid}\` ([record](${gatewayUrl}/ipfs/${cid})) · \`task-mgmt verify ${cid}\` checks it and the outputs against their bytes`);
  }
  if (run.outputCid) {
    const gateway = `${gatewayUrl}/ipfs/${run.outputCid}`;
    lines.push('', `### Outputs`, '', `\`ipfs://${run.outputCid}\` ([gateway](${gateway}))`);
    if (run.outputFiles.length > 0) {
      // A list, not a table: in a table cell GitHub splits at a pipe before it sees code spans,
      // and a name ending in a backslash would unescape the pipe meant to stay inside the span.
      lines.push('');
      for (const file of run.outputFiles) {
        const name = quote(file.name + (file.kind === 'directory' ? '/' : ''), 256);
        lines.push(`- ${name} · [\`${file.cid}\`](${gatewayUrl}/ipfs/${file.cid}) · ${file.kind === 'file' ? formatSize(file.size) : file.kind}`);
      }
    } else {
      lines.push('', 'The task wrote no files to `/out`.');
    }
    if (run.pinnedUntil) lines.push('', `Pinned until ${formatInstant(run.pinnedUntil)}; \`/pin ${run.id} <duration>\` keeps them longer.`);
  }
  const text = logBlock(run.logTail);
  return {
    status: 'completed',
    conclusion,
    title,
    summary: truncateEnd(lines.join('\n')),
    ...(text ? { text } : {}),
    actions: [],
  };
}

/** A moment to the minute, in UTC: `2026-01-31 14:05 UTC`. */
function formatInstant(at: Date): string {
  return `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const titles: Partial<Record<Run['state'], string>> = {
  succeeded: 'Succeeded',
  failed: 'Failed',
  cancelled: 'Cancelled',
  timed_out: 'Timed out',
};

function conclusionOf(run: Run): NonNullable<CheckReport['conclusion']> {
  switch (run.state) {
    case 'succeeded':
      return 'success';
    case 'cancelled':
      return 'cancelled';
    case 'timed_out':
      return 'timed_out';
    default:
      return 'failure';
  }
}

/** A manifest that cannot be read: nothing is queued, and each error points at its line. */
export function manifestErrorReport(errors: readonly { file: string; line: number; column: number; field: string; message: string }[], sha: string): CheckReport {
  const lines = errors.map((e) => `- ${quote(e.file)} line ${e.line}, column ${e.column}${e.field ? `, ${quote(e.field)}` : ''}: ${quote(e.message, longTextChars)}`);
  return {
    status: 'completed',
    conclusion: 'failure',
    title: `The task definition has ${errors.length === 1 ? 'an error' : `${errors.length} errors`}`,
    summary: truncateEnd(`Nothing ran: the task definition at \`${sha}\` cannot be used.\n\n${lines.join('\n')}`),
    annotations: errors.map((e) => ({ path: e.file, line: e.line, column: e.column, title: e.field || e.file, message: e.message })),
    actions: [],
  };
}
