/** Entry point: picks serve | worker | add | validate | run | verify | runs | logs | cancel | schema from argv. No logic lives here. */
import { ConfigError, loadConfig } from './config.js';
import { isCommand, USAGE, usageOf, wantsHelp } from './cli/usage.js';

// Each command loads only its own modules: loading all of them (Probot, BullMQ, Docker, the Kubo
// client...) took 2 s of CPU, longer than `add` takes to hash 512 MiB.
const schemas: Record<string, () => Promise<unknown>> = {
  manifest: async () => (await import('./core/manifest/manifest-schema.js')).manifestJsonSchema(),
  org: async () => (await import('./core/run-service/run-service.js')).orgPolicyJsonSchema(),
  message: async () => (await import('./adapters/events/schemas.js')).messageJsonSchema(),
  event: async () => (await import('./adapters/events/schemas.js')).eventJsonSchema(),
};

/** Reads `.env` (where the registration page saves the App's credentials); real env vars win. */
function loadDotEnv(): void {
  try {
    process.loadEnvFile('.env');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

async function main(command: string | undefined, rest: string[]): Promise<number> {
  if (command === undefined) {
    console.error(USAGE);
    return 2;
  }
  if (command === 'help' || command === '--help' || command === '-h') {
    console.log(usageOf(rest[0] ?? ''));
    return 0;
  }
  if (!isCommand(command)) {
    console.error(`task-mgmt: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  if (wantsHelp(rest)) {
    console.log(usageOf(command));
    return 0;
  }
  loadDotEnv();
  switch (command) {
    case 'serve':
      return (await import('./cli/serve.js')).serve(loadConfig());
    // Only `serve` takes webhooks: the others need no WEBHOOK_SECRET.
    case 'worker':
      return (await import('./cli/worker.js')).worker(loadConfig(process.env, { takesWebhooks: false }));
    case 'add':
      return (await import('./cli/add.js')).add(loadConfig(process.env, { takesWebhooks: false }), rest);
    case 'validate':
      return (await import('./cli/validate.js')).validate(loadConfig(process.env, { takesWebhooks: false }), rest);
    case 'run':
      return (await import('./cli/run-local.js')).runLocal(loadConfig(process.env, { takesWebhooks: false }), rest);
    // Reads only the gateway's address and a token from the environment: no configuration to load.
    case 'verify':
      return (await import('./cli/verify.js')).verify(rest);
    // Talk to a running app: TASK_MGMT_URL and TASK_MGMT_TOKEN only.
    case 'runs':
    case 'logs':
    case 'cancel':
      return (await import('./cli/remote.js')).remote(command, rest);
    default: {
      const schema = schemas[rest[0] ?? 'manifest'];
      if (!schema) {
        console.error(`task-mgmt schema: one of ${Object.keys(schemas).join(', ')}`);
        return 2;
      }
      console.log(JSON.stringify(await schema(), null, 2));
      return 0;
    }
  }
}

/** A failure the user sees: one line naming the command, never a stack trace (unless LOG_LEVEL asks). */
function report(command: string | undefined, error: unknown): void {
  const message = error instanceof ConfigError ? error.message : error instanceof Error ? error.message.replace(/\s*\n\s*/g, ' ') : String(error);
  console.error(`task-mgmt${command && isCommand(command) ? ` ${command}` : ''}: ${message}`);
  if (/^(debug|trace)$/.test(process.env.LOG_LEVEL ?? '') && error instanceof Error && !(error instanceof ConfigError)) console.error(error.stack);
}

const [command, ...rest] = process.argv.slice(2);
main(command, rest).then(
  (code) => {
    // A server has stopped (within SHUTDOWN_GRACE): whatever still holds the event loop — a
    // socket to a GitHub that does not answer, a retry timer — must not keep the process alive.
    if (command === 'serve' || command === 'worker') process.exit(code);
    if (code !== 0) process.exitCode = code;
  },
  (error: unknown) => {
    report(command, error);
    if (command === 'serve' || command === 'worker') process.exit(1);
    process.exitCode = 1;
  },
);
