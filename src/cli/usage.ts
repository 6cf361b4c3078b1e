/** What `task-mgmt --help` and `task-mgmt <command> --help` print. */
import { ADD_USAGE } from './add.js';

export const USAGE = `usage: task-mgmt <command> [--help]

  serve              the GitHub App: webhooks, JSON API and an in-process worker (npm start)
  worker             a worker only, taking runs from QUEUE_URL (for other machines)
  run [dir] [task] [key=value…]
                     run a folder's tasks here, exactly as a worker would, and print the CIDs
  validate [dir] [task] [key=value…] [--org <file>]
                     check a folder's task definition and print what /run would do;
                     with --org, an org policy file and the limits it sets
  add [-r] <path>    add a file (or with -r a folder) to IPFS and print its CID, as \`ipfs add\` does
  verify <provenance-cid> [--gateway URL]
                     check a run's provenance record and its outputs against their CIDs
  runs [--state S] [--repo owner/name] [--follow] [--json]
                     list the runs of a running app (TASK_MGMT_URL), and with --follow their changes
  logs <run-id> [--follow] [--json]
                     print a run's log, and with --follow go on while it runs
  cancel <run-id> [--json]
                     cancel a queued or running run
  schema [manifest|org|message|event]
                     print the JSON Schema of task-mgmt.yml, of the org policy file, of a queue message, or of an event

Run \`task-mgmt <command> --help\` for one command. Configuration comes from the environment
and a .env file; see README.md.`;

const commandUsage: Record<string, string> = {
  serve: `usage: task-mgmt serve

The GitHub App: webhooks at WEBHOOK_PATH, the JSON API, and WORKERS in-process workers, on
HOST:PORT (localhost:3000). Without APP_ID it serves the page that registers the App on GitHub.
SIGTERM or SIGINT stops taking webhooks and runs, waits up to SHUTDOWN_GRACE (30s) for running
runs, hands the rest back to the queue, and exits.`,
  worker: `usage: task-mgmt worker

A worker only: takes runs from the shared queue (QUEUE_URL) and run store (DATABASE_URL) and
reports to GitHub with the App's credentials (APP_ID, PRIVATE_KEY or PRIVATE_KEY_PATH). WORKERS
runs at once. Needs no WEBHOOK_SECRET: it takes no webhooks. SIGTERM stops it as it stops serve.`,
  run: `usage: task-mgmt run [dir] [task] [key=value…]

Runs the tasks of the folder dir (default: the current folder) on this machine, exactly as a
worker would — the same manifest code, sandbox and IPFS import — and prints each task's state and
CIDs. With a task name, runs that task and the tasks it needs; key=value sets its parameters.
Needs a Docker engine (DOCKER_HOST, or the local socket) for container and Procfile tasks; no
GitHub and no queue server. Local runs are kept in DATA_DIR/local, apart from the app's.
Exit code 0 when every task succeeded, 1 when one did not or the run was refused, 2 on a usage error.`,
  validate: `usage: task-mgmt validate [dir] [task] [key=value…] [--org <file>]

Reads the task definition of the folder dir (default: the current folder) — task-mgmt.yml,
Dockerfile or Procfile — and prints its tasks, their order, parameters and limits and what a
pull request needs review for; or its errors with file, line and field. Also says when
\`task-mgmt run\` or /run would refuse the request (with the given task and parameters). Runs nothing.
With --org <file> (an org's .github/task-mgmt.yml), checks that file, prints the effective limits
it sets, and whether it would refuse the folder's tasks (without dir, only the file).
Exit code 0 when it would run, 1 when not, 2 on a usage error.`,
  add: ADD_USAGE.trimEnd(),
  verify: `usage: task-mgmt verify <provenance-cid> [--gateway URL]

Checks a run's provenance record and every output it names against their CIDs, through one
trustless IPFS gateway: the record's bytes must hash to the CID given, and each output is
fetched as a CAR whose every block must hash to its CID and which must hold the whole DAG
below it. Prints one line per item, and exits 0 only if all of them hold.

  --gateway URL   the gateway, e.g. https://task-mgmt.example (its /ipfs/ is asked); default:
                  IPFS_GATEWAY_URL, else PUBLIC_URL (the app's own gateway)

Only that gateway is asked. TASK_MGMT_TOKEN, when set, is sent to it as a bearer token if it is
the app's own (the address of TASK_MGMT_URL or PUBLIC_URL), so outputs of private repositories
can be checked by whoever may read the run.
Exit code 0 when everything holds, 1 when something does not or cannot be fetched, 2 on a usage error.`,
  runs: `usage: task-mgmt runs [--state S] [--repo owner/name] [--follow] [--json]

Lists the newest 50 runs of a running app that TASK_MGMT_TOKEN may read (a service token, or
your GitHub user token: runs of repositories you can read), one line each: id, state, repository,
task, who asked, when. --state and --repo filter; --follow then prints each run that changes,
until interrupted (over /api/events); --json prints the API's JSON (one event per line when
following). Needs TASK_MGMT_URL (the app's address) and TASK_MGMT_TOKEN.
Exit code 0, 1 when the app cannot be reached or refuses, 2 on a usage error.`,
  logs: `usage: task-mgmt logs <run-id> [--follow] [--json]

Prints a run's log as the app stores it; with --follow goes on until the run ends. --json prints
one {"line": …} per line (and, following, {"event", "state"} as the state changes). Needs
TASK_MGMT_URL and TASK_MGMT_TOKEN. Exit code 0, 1 when there is no such run (for this token) or
the app cannot be reached, 2 on a usage error.`,
  cancel: `usage: task-mgmt cancel <run-id> [--json]

Cancels a queued or running run, through the same policy as /cancel (the write role on its
repository, for a user token). Needs TASK_MGMT_URL and TASK_MGMT_TOKEN. Exit code 0 when it was
cancelled, 1 when refused, already ended or not found (the line says which), 2 on a usage error.`,
  schema: `usage: task-mgmt schema [manifest|message|event]

Prints a JSON Schema: of task-mgmt.yml (manifest, the default), of a queue message, or of an event.`,
};

/** The usage of one command, or of all when the command is unknown. */
export function usageOf(command: string): string {
  return commandUsage[command] ?? USAGE;
}

export function isCommand(command: string): boolean {
  return command in commandUsage;
}

export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}
