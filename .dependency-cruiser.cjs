/**
 * The import boundaries of task-mgmt, checked by `npm run boundaries` (part of `npm test`).
 * `.cjs` because package.json says "type": "module" and dependency-cruiser loads this with require.
 *
 * Paths are relative to the repository root; a rule's `from`/`to` are regular expressions on
 * them. Packages appear as `node_modules/<name>/…`, Node built-ins as their bare name (`net`).
 *
 * @type {import('dependency-cruiser').IConfiguration}
 */

/** Packages that tie code to one framework or technology; core names none of them. */
const technologyPackages = [
  'probot',
  '@octokit/[^/]+',
  'bullmq',
  'ioredis',
  'amqplib',
  'dockerode',
  'kysely',
  'pg',
  'better-sqlite3',
  'blockstore-[^/]+',
  'interface-blockstore',
  'ipfs-[^/]+',
  'kubo-rpc-client',
  'multiformats',
  '@ipld/[^/]+',
  'nodemailer',
  'warcio',
  'tar',
  'prom-client',
];
/**
 * A resolved path in node_modules, or the bare name of a package that is not installed.
 * `@types/<name>` counts as the package itself: a type-only import still ties core to it.
 */
const technologyPackage = `(^|(^|/)node_modules/)(@types/)?(${technologyPackages.join('|')})(/|$)`;

/** Raw network clients; task types reach the network only through their context (rules below). */
const rawNetwork = '^(node:)?(net|http|https|http2|dgram|tls)$';

module.exports = {
  forbidden: [
    /* ------------------------------------------------------------------------ 1. core is pure */
    {
      name: 'core-imports-no-outer-layer',
      severity: 'error',
      comment:
        'src/core/ is the domain: it imports only core/ and ports/. Adapters, the worker, the CLI, ' +
        'the composition root and task types depend on core, never the other way round. Unit ' +
        'tests beside core modules may use the in-memory adapters instead of ad-hoc mocks.',
      from: { path: '^src/core/', pathNot: '\\.test\\.ts$' },
      to: { path: ['^src/adapters/', '^src/worker/', '^src/cli/', '^src/app\\.ts$', '^src/main\\.ts$', '^tasks/'] },
    },
    {
      name: 'core-imports-no-technology',
      severity: 'error',
      comment:
        'src/core/ names no framework or technology package (Probot, Octokit, BullMQ, Redis, ' +
        'RabbitMQ, Docker, SQL, IPFS, SMTP, WARC, Prometheus): those live in adapters behind a port. zod, yaml, ' +
        're2js (manifest patterns need a regular expression engine that cannot backtrack, and it is ' +
        "plain JavaScript with no service behind it), pino's Logger type and node: built-ins are fine.",
      from: { path: '^src/core/' },
      to: { path: technologyPackage },
    },

    /* --------------------------------------------------------------------------- 2. task types */
    {
      name: 'tasks-import-only-ports-from-src',
      severity: 'error',
      comment:
        'Task types see the application only through its ports (TaskType, TaskContext, errors, ' +
        'units): src/ports/. Anything else in src/ is internal and may change under them.',
      from: { path: '^tasks/' },
      to: { path: '^src/', pathNot: '^src/ports/' },
    },
    {
      name: 'task-type-imports-no-other-task-type',
      severity: 'error',
      comment:
        'A task type is one folder, tasks/<area>/<name>/ (or tasks/<name>/ for container and ' +
        'procfile), self-contained: what two of them share goes to tasks/shared/. tasks/index.ts, ' +
        'the registry, is not a task type and imports them all.',
      // $1 is the importing task type's folder: two levels (kiwix/zim) when the file sits below
      // them, else one level (container) for a file directly in tasks/<name>/.
      from: { path: '^tasks/((?!shared/)[^/]+/[^/]+(?=/)|(?!shared/)[^/]+(?=/[^/]+$))/' },
      to: { path: '^tasks/', pathNot: ['^tasks/$1/', '^tasks/shared/'] },
    },
    {
      name: 'tasks-shared-imports-no-task-type',
      severity: 'error',
      comment: 'tasks/shared/ serves every task type, so it depends on none of them.',
      from: { path: '^tasks/shared/' },
      to: { path: '^tasks/', pathNot: '^tasks/shared/' },
    },

    /* ------------------------------------------------------------------------ 3. HTTP adapter */
    {
      name: 'http-adapter-is-private',
      severity: 'error',
      comment:
        'src/adapters/http/ (JSON API, JSON-RPC, metrics) is wired in by the composition root ' +
        '(src/app.ts) and the serve command (src/cli/serve.ts, src/cli/dashboard.ts) only; the dashboard ' +
        '(src/adapters/dashboard/) shares its request parsing and the API door for starting runs; others use the run service.',
      from: { pathNot: ['^src/adapters/http/', '^src/adapters/dashboard/', '^src/app\\.ts$', '^src/cli/serve\\.ts$', '^src/cli/dashboard\\.ts$'] },
      to: { path: '^src/adapters/http/' },
    },

    /* --------------------------------------------------------------- 4. policy and audit behind the run service */
    {
      name: 'policy-only-from-run-service',
      severity: 'error',
      comment:
        'Policy decides once, in the run service (src/core/run-service/): no adapter, worker or ' +
        'other use case re-implements or calls it on the side. Its own files and tests excepted.',
      from: { pathNot: ['^src/core/run-service/', '^src/core/policy/', '\\.test\\.ts$'] },
      to: { path: '^src/core/policy/' },
    },
    {
      name: 'audit-only-from-run-service',
      severity: 'error',
      comment: 'Every decision is audited by the run service that made it, and by nothing else.',
      from: { pathNot: '^src/core/run-service/' },
      to: { path: '^src/core/run-service/audit\\.ts$' },
    },

    /* -------------------------------------------------------------------------------- 5. cycles */
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Modules of src/ form no cycle: each can be read, tested and loaded on its own.',
      from: { path: '^src/' },
      to: { circular: true },
    },

    /* ------------------------------------------------------------- 6. task types and the network */
    {
      name: 'task-types-network-through-context',
      severity: 'error',
      comment:
        'Task types reach the network only through their context: ctx.fetch (the guarded fetch of ' +
        'tasks/shared/safe-fetch.ts, which vets every address it connects to, DNS rebinding ' +
        'included) and ctx.mail (tasks/shared/smtp-mailer.ts, which sends only to the operator\'s ' +
        'SMTP_URL). The worker wires both (src/worker/tasks/) and nothing else imports them, so no ' +
        'task type can build a fetch with other settings or skip the one it was given. Tests may ' +
        'build one to put in the context they pass.',
      from: { pathNot: ['^src/worker/tasks/', '\\.test\\.ts$', '/test-[^/]+\\.ts$'] },
      to: { path: '^tasks/shared/(safe-fetch|smtp-mailer)\\.ts$' },
    },
    {
      name: 'task-types-no-raw-network',
      severity: 'error',
      comment:
        'No module of tasks/ opens a socket of its own: raw sockets would skip the address checks ' +
        "of ctx.fetch. Only the modules behind the context's fetch and mailer use node:http, " +
        'node:https and node:net (tasks/shared/safe-fetch.ts connects to exactly the addresses it ' +
        "vetted; tasks/shared/smtp-mailer.ts opens the SMTP connection itself so that cancelling a " +
        "run can cut a send short, which nodemailer's own transport cannot). Tests stand up local " +
        'servers, so *.test.ts and test-*.ts helpers are excepted.',
      from: {
        path: '^tasks/',
        pathNot: ['^tasks/shared/safe-fetch\\.ts$', '^tasks/shared/smtp-mailer\\.ts$', '\\.test\\.ts$', '/test-[^/]+\\.ts$'],
      },
      to: { dependencyTypes: ['core'], path: rawNetwork },
    },
    {
      name: 'task-types-no-dns',
      severity: 'error',
      comment:
        'A task type resolves no names itself: an address it found could skip the check. Only ' +
        'tasks/shared/safe-fetch.ts (behind ctx.fetch) resolves, so that it can vet every address ' +
        'and connect to exactly those. Tests excepted.',
      from: { path: '^tasks/', pathNot: ['^tasks/shared/safe-fetch\\.ts$', '\\.test\\.ts$', '/test-[^/]+\\.ts$'] },
      to: { dependencyTypes: ['core'], path: '^(node:)?dns(/promises)?$' },
    },
    {
      name: 'task-types-no-mailer',
      severity: 'error',
      comment:
        'A task type sends mail only through ctx.mail (tasks/shared/smtp-mailer.ts), which ' +
        "connects to the operator's SMTP_URL and nowhere else (a manifest names recipients, never " +
        'a server). Tests excepted.',
      from: { path: '^tasks/', pathNot: ['^tasks/shared/smtp-mailer\\.ts$', '\\.test\\.ts$', '/test-[^/]+\\.ts$'] },
      to: { path: '(^|/)node_modules/(@types/)?nodemailer(/|$)|^nodemailer(/|$)' },
    },

    /* ---------------------------------------------------------------------------- housekeeping */
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that resolves to no file (a moved module, a typo) fails here, not at start-up.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],

  options: {
    doNotFollow: { path: 'node_modules' },
    // Python helpers beside task tests are not part of the module graph.
    exclude: { path: '\\.py$' },
    // Resolve as tsc does: `./x.js` specifiers find `./x.ts`.
    tsConfig: { fileName: 'tsconfig.json' },
    // Type-only imports count too: `import type { Octokit }` ties core to Octokit as much as a value import.
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
