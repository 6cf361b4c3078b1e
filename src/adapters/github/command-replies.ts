/**
 * How the run service's outcomes read on GitHub: the replies under a pull request or issue, and
 * the reaction on the comment that gave the command. Pure text; the intake posts it.
 *
 * Anyone who can comment can make the app reply, so nothing someone wrote (task names,
 * descriptions, parameter values, manifest errors, error messages) appears here except through
 * `quote`: the only mention a reply makes is of the person who asked, at its start. A refusal
 * marked `silent` (past the command limit, after the reply that said so) is no answer at all.
 */
import { describeOrgPolicy } from '../../core/run-service/run-service.js';
import type { ResolvedTask } from '../../core/manifest/load-manifest.js';
import type { CancelOutcome, HelpOutcome, PinOutcome, RequestOutcome, UsageOutcome } from '../../core/run-service/run-service.js';
import { quote } from '../../core/text/quote.js';
import type { Reaction } from './github-conversation.js';

export interface Answer {
  reaction: Reaction | null;
  reply: string | null;
}

const silence: Answer = { reaction: null, reply: null };

export function requestAnswer(login: string, outcome: RequestOutcome): Answer {
  if (outcome.kind === 'refused' && outcome.silent) return silence;
  switch (outcome.kind) {
    case 'queued':
      // The check runs are the main acknowledgement; the reaction says the comment was heard.
      return { reaction: 'rocket', reply: null };
    case 'waiting':
      return { reaction: 'eyes', reply: `@${login} nothing was run yet: ${outcome.reason}` };
    case 'refused':
      return { reaction: 'confused', reply: `@${login} nothing was run: ${outcome.reason}` };
  }
}

export function cancelAnswer(login: string, outcome: CancelOutcome): Answer {
  if (outcome.kind === 'refused' && outcome.silent) return silence;
  switch (outcome.kind) {
    case 'cancelled':
      return { reaction: '+1', reply: null };
    case 'already_ended':
      return { reaction: 'confused', reply: `@${login} nothing was cancelled: run \`${outcome.run.id}\` has already ended (${outcome.run.state}).` };
    case 'refused':
      return { reaction: 'confused', reply: `@${login} nothing was cancelled: ${outcome.reason}` };
  }
}

export function pinAnswer(login: string, outcome: PinOutcome): Answer {
  if (outcome.kind === 'refused' && outcome.silent) return silence;
  switch (outcome.kind) {
    case 'pinned': {
      const until = `${outcome.pinnedUntil.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
      const what = `the outputs of run \`${outcome.run.id}\``;
      return outcome.extended
        ? { reaction: '+1', reply: `@${login} ${what} stay pinned until ${until}.` }
        : { reaction: '+1', reply: `@${login} ${what} were already pinned until ${until}, longer than asked; nothing changed.` };
    }
    case 'refused':
      return { reaction: 'confused', reply: `@${login} nothing was pinned: ${outcome.reason}` };
  }
}

export function undecidedReply(login: string, error: string): string {
  return `@${login} nothing was run: task-mgmt could not check this request with GitHub (${quote(error)}), and it never runs what it could not check. Please try again later.`;
}

/** A near miss or usage error: the parser's words, which quote what the comment said. */
export function usageAnswer(login: string, outcome: UsageOutcome): Answer {
  if (outcome.kind === 'refused') return outcome.silent ? silence : { reaction: null, reply: `@${login} ${outcome.reason}` };
  return { reaction: null, reply: `@${login} ${outcome.message}` };
}

export function helpAnswer(login: string, outcome: HelpOutcome): Answer {
  if (outcome.kind === 'refused') return outcome.silent ? silence : { reaction: null, reply: `@${login} ${outcome.reason}` };
  return { reaction: null, reply: helpReply(outcome) };
}

export function helpReply(outcome: Exclude<HelpOutcome, { kind: 'refused' }>): string {
  const tasks =
    outcome.kind === 'tasks'
      ? `Tasks at \`${outcome.sha.slice(0, 12)}\` (from ${quote(outcome.manifest.source)}):\n\n${outcome.manifest.tasks.map(describeTask).join('\n')}`
      : outcome.kind === 'manifest_errors'
        ? `The task definition at \`${outcome.sha.slice(0, 12)}\` has errors: ${outcome.errors.map((e) => `${quote(e.file)} line ${e.line}${e.field ? `, ${quote(e.field)}` : ''}: ${quote(e.message)}`).join('; ')}`
        : outcome.kind === 'no_tasks'
          ? `No tasks: ${outcome.reason}`
          : 'The tasks could not be listed just now.';
  return [
    '**task-mgmt commands** (the first line of a comment):',
    '',
    '- `/run [task] [key=value…]` — run the task and what it needs (all tasks when none is named) at this pull request\'s head commit, or at the default branch\'s HEAD on an issue. Needs the write role or higher; a pull request by someone without write access, or one that changes the task, also needs an approving review of its head commit.',
    '- `/cancel [run-id]` — cancel the queued and running runs of this pull request or issue, or one run.',
    '- `/retry` — run again the tasks whose latest run here failed, at the same commit.',
    '- `/pin <run-id> <duration>` — keep a run\'s outputs pinned until at least that long from now (e.g. `90d`). Needs the write role or higher.',
    '- `/help` — this list.',
    '',
    tasks,
    '',
    ...(outcome.kind !== 'unavailable' && outcome.org ? [describeOrgPolicy(outcome.org).join('\n'), ''] : []),
    'Results appear as check runs named `task-mgmt / <task>` on the commit that ran.',
  ].join('\n');
}

function describeTask(task: ResolvedTask): string {
  const params = Object.entries(task.params).map(([key, spec]) => {
    const rules = [
      spec.required ? 'required' : null,
      spec.default !== undefined ? `default ${quote(spec.default)}` : null,
      spec.enum ? `one of ${spec.enum.map((value) => quote(value)).join(', ')}` : null,
      spec.pattern ? `matching ${quote(spec.pattern)}` : null,
    ]
      .filter(Boolean)
      .join(', ');
    return `${quote(key)}${rules ? ` (${rules})` : ''}${spec.description ? ` — ${quote(spec.description)}` : ''}`;
  });
  const needs = task.needs.length > 0 ? `; needs ${task.needs.map((n) => quote(n)).join(', ')}` : '';
  const schedule = task.schedule?.length ? `; runs on the default branch on schedule ${task.schedule.map((s) => quote(`${s.cron}${s.timezone === 'UTC' ? '' : ` (${s.timezone})`}`)).join(', ')}` : '';
  return `- ${quote(task.name)} — ${task.type}${task.description ? `: ${quote(task.description)}` : ''}${needs}; ${params.length > 0 ? `parameters ${params.join(', ')}` : 'no parameters'}${schedule}`;
}
