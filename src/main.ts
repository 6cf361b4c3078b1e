/** Entry point: picks serve | worker | add | validate | run | schema from argv. No logic lives here. */
import { ConfigError, loadConfig } from './config.js';
import { serve } from './cli/serve.js';
import { worker } from './cli/worker.js';
import { add } from './cli/add.js';
import { validate } from './cli/validate.js';
import { runLocal } from './cli/run-local.js';
import { manifestJsonSchema } from './core/manifest/manifest-schema.js';
import { eventJsonSchema, messageJsonSchema } from './adapters/events/schemas.js';

const schemas: Record<string, () => unknown> = { manifest: manifestJsonSchema, message: messageJsonSchema, event: eventJsonSchema };

const usage = `usage: task-mgmt <command>

  serve              the GitHub App: webhooks, /healthz and an in-process worker (npm start)
  worker             a worker only, taking runs from QUEUE_URL (for other machines)
  add <path>         add a file or folder to IPFS and print its CID, as \`ipfs add -r\` would
  validate [dir]     check a folder's task definition and print what /run would do
  run [dir] [task] [key=value…]
                     run a folder's tasks exactly as a worker would, and print the CIDs
  schema [manifest|message|event]
                     print the JSON Schema of task-mgmt.yml, of a queue message, or of an event

Configuration comes from the environment; see README.md.`;

/** Reads `.env` (where Probot's setup flow saves the App's credentials); real env vars win. */
function loadDotEnv(): void {
  try {
    process.loadEnvFile('.env');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

async function main(argv: string[]): Promise<number> {
  loadDotEnv();
  const [command = 'serve', ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(loadConfig());
    case 'worker':
      return worker(loadConfig());
    case 'add':
      return add(loadConfig(), rest);
    case 'validate':
      return validate(loadConfig(), rest);
    case 'run':
      return runLocal(loadConfig(), rest);
    case 'schema': {
      const schema = schemas[rest[0] ?? 'manifest'];
      if (!schema) {
        console.error(`task-mgmt schema: one of ${Object.keys(schemas).join(', ')}`);
        return 2;
      }
      console.log(JSON.stringify(schema(), null, 2));
      return 0;
    }
    case 'help':
    case '--help':
    case '-h':
      console.log(usage);
      return 0;
    default:
      console.error(`task-mgmt: unknown command "${command}"\n\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof ConfigError ? `task-mgmt: ${error.message}` : error);
    process.exitCode = 1;
  },
);
