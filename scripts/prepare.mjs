// npm runs `prepare` after every install in a clone: `npm ci` then compiles the TypeScript, so
// `npm ci && npm start` works from a fresh clone. `npm ci --omit=dev` installs no compiler (the
// Docker image's runtime stage, which takes dist/ from its build stage): there the build is
// skipped, and said so, instead of failing on a missing `tsc`.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
try {
  require.resolve('typescript');
} catch {
  console.log('prepare: TypeScript is not installed (npm ci --omit=dev), so dist/ is not built: copy it from a full install');
  process.exit(0);
}
// npm_execpath is the npm that runs this script; calling it through node works on every platform.
const npm = process.env.npm_execpath;
const build = npm
  ? spawnSync(process.execPath, [npm, 'run', 'build'], { stdio: 'inherit' })
  : spawnSync('npm', ['run', 'build'], { stdio: 'inherit', shell: process.platform === 'win32' });
process.exit(build.status ?? 1);
