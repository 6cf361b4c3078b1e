/**
 * How the run service's outcomes read on GitHub: the replies under a pull request or issue, and
 * the reaction on the comment that gave the command. Pure text; the intake posts it.
 */
import type { ResolvedTask } from '../../core/manifest/load-manifest.js';
import type { CancelOutcome, HelpOutcome, RequestOutcome } from '../../core/run-service/run-service.js';
import type { Reaction } from './github-conversation.js';

export interface Answer {
  reaction: Reaction | null;
  reply: string | null;
}

export function requestAnswer(login: string, outcome: RequestOutcome): Answer {
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
  switch (outcome.kind) {
    case 'cancelled':
      return { reaction: '+1', reply: null };
    case 'already_ended':
      return { reaction: 'confused', reply: `@${login} nothing was cancelled: run \`${outcome.run.id}\` has already ended (${outcome.run.state}).` };
    case 'refused':
      return { reaction: 'confused', reply: `@${login} nothing was cancelled: ${outcome.reason}` };
  }
}

export function undecidedReply(login: string, error: string): string {
  return `@${login} nothing was run: task-mgmt could not check this request with GitHub (${error}), and it never runs what it could not check. Please try again later.`;
}

export function helpReply(outcome: HelpOutcome): string {
  const tasks =
    outcome.kind === 'tasks'
      ? `Tasks at \`${outcome.sha.slice(0, 12)}\` (from \`${outcome.manifest.source}\`):\n\n${outcome.manifest.tasks.map(describeTask).join('\n')}`
      : outcome.kind === 'manifest_errors'
        ? `The task definition at \`${outcome.sha.slice(0, 12)}\` has errors: ${outcome.errors.map((e) => `\`${e.file}\` line ${e.line}: ${e.message}`).join('; ')}`
        : outcome.kind === 'no_tasks'
          ? `No tasks: ${outcome.reason}`
          : 'The tasks could not be listed just now.';
  return [
    '**task-mgmt commands** (the first line of a comment):',
    '',
    '- `/run [task] [key=value…]` — run the task and what it needs (all tasks when none is named) at this pull request\'s head commit, or at the default branch\'s HEAD on an issue. Needs the write role or higher; a pull request by someone without write access, or one that changes the task, also needs an approving review of its head commit.',
    '- `/cancel [run-id]` — cancel the queued and running runs of this pull request or issue, or one run.',
    '- `/retry` — run again the tasks whose latest run here failed, at the same commit.',
    '- `/help` — this list.',
    '',
    tasks,
    '',
    'Results appear as check runs named `task-mgmt / <task>` on the commit that ran.',
  ].join('\n');
}

function describeTask(task: ResolvedTask): string {
  const params = Object.entries(task.params).map(([key, spec]) => {
    const rules = [spec.required ? 'required' : null, spec.default !== undefined ? `default \`${spec.default}\`` : null, spec.enum ? `one of ${spec.enum.join(', ')}` : null, spec.pattern ? `matching \`${spec.pattern}\`` : null]
      .filter(Boolean)
      .join(', ');
    return `\`${key}\`${rules ? ` (${rules})` : ''}${spec.description ? ` — ${spec.description}` : ''}`;
  });
  const needs = task.needs.length > 0 ? `; needs ${task.needs.map((n) => `\`${n}\``).join(', ')}` : '';
  return `- \`${task.name}\` — ${task.type}${task.description ? `: ${task.description}` : ''}${needs}; ${params.length > 0 ? `parameters ${params.join(', ')}` : 'no parameters'}`;
}
