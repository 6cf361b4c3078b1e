// The Docker image's HEALTHCHECK: GET /healthz of the process this container runs. One image
// serves the app (`task-mgmt serve`, /healthz on PORT) and workers (`task-mgmt worker`, /healthz
// on METRICS_PORT), so the subcommand is read from PID 1's command line (under `init: true`
// PID 1 is the init process, whose arguments hold the same command).
import { readFileSync } from 'node:fs';

const args = readFileSync('/proc/1/cmdline', 'utf8').split('\0');
const script = args.findIndex((arg) => arg.endsWith('task-mgmt.js'));
const subcommand = script >= 0 ? args[script + 1] : undefined;
const port = subcommand === 'worker' ? process.env.METRICS_PORT || '9464' : process.env.PORT || '3000';
const url = `http://127.0.0.1:${port}/healthz`;
try {
  const response = await fetch(url, { signal: AbortSignal.timeout(4000) });
  if (!response.ok) {
    console.log(`${url} answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
    process.exit(1);
  }
} catch (error) {
  console.log(`${url} did not answer: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
