/**
 * `task-mgmt add`: add a file or folder to the configured IPFS store and print its CID the way
 * Kubo's `ipfs add` prints it (README "Outputs on IPFS").
 */
import { lstat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CID_PROFILES, importOptionsInputSchema } from '../adapters/ipfs/import-profile.js';
import type { ImportOptionsInput } from '../adapters/ipfs/import-profile.js';
import type { Config } from '../config.js';
import { loadIpfsStore } from '../adapters/ipfs/load-ipfs-store.js';
import type { AddedEntry, AddResult, IpfsStore } from '../ports/ipfs-store.js';

export const ADD_USAGE = `Usage: task-mgmt add [options] <path>

Add a file or folder to IPFS and print its CID, as Kubo's ipfs add does.

Options:
  -r, --recursive              add a folder and everything in it
  -Q, --quieter                print only the root CID (like ipfs add -r -Q)
  -q, --quiet                  print only CIDs, one per line
  -H, --hidden                 include files and folders whose name starts with a dot
      --cid-version=<0|1>      CID version; without --profile, 1 also turns raw leaves on
      --raw-leaves[=<bool>]    store file data in raw blocks instead of dag-pb nodes
      --profile=<name>         unixfs-v0-2015 (Kubo's default) or unixfs-v1-2025
  -h, --help                   show this help
`;

export interface AddCommandIo {
  /** Receives whole lines, each ending with "\n". */
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** What the command asks of the store it needs; the wiring builds the store from it. */
export interface AddStoreRequest {
  /**
   * Import settings from the flags. `profile` is unset when no `--profile` was given: the wiring
   * should then use the configured profile (IPFS_CID_PROFILE), or Kubo's defaults if none.
   */
  import: ImportOptionsInput;
  /** `--hidden`: include dot-files inside added folders. */
  includeHidden: boolean;
}

export interface AddCommandDeps {
  /** Called once per invocation, since flags change how the store imports; closed after the add. */
  createStore: (request: AddStoreRequest) => IpfsStore | Promise<IpfsStore>;
  signal?: AbortSignal;
}

/** Exit codes: 0 added, 1 the add failed, 2 the command line was wrong. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

class UsageError extends Error {}

interface AddRequest {
  path: string;
  output: 'full' | 'quiet' | 'quieter';
  recursive: boolean;
  store: AddStoreRequest;
}

const BOOLEAN_FLAGS = new Set(['recursive', 'quiet', 'quieter', 'hidden', 'raw-leaves', 'help']);

export async function addCommand(argv: readonly string[], io: AddCommandIo, deps: AddCommandDeps): Promise<number> {
  let request: AddRequest | 'help';
  try {
    request = parseAddArgs(argv);
  } catch (error) {
    io.stderr(`Error: ${errorMessage(error)}\n\n${ADD_USAGE}`);
    return EXIT_USAGE;
  }
  if (request === 'help') {
    io.stdout(ADD_USAGE);
    return EXIT_OK;
  }

  try {
    const stats = await lstat(request.path);
    if (stats.isDirectory() && !request.recursive) {
      // Kubo's wording for the same mistake.
      io.stderr(`Error: ${request.path} is a directory, use the '-r' flag to specify directories\n`);
      return EXIT_USAGE;
    }
    const store = await deps.createStore(request.store);
    let result: AddResult;
    try {
      result = await store.addPath(request.path, { signal: deps.signal });
    } finally {
      await store.close();
    }
    for (const line of outputLines(request, result)) io.stdout(`${line}\n`);
    return EXIT_OK;
  } catch (error) {
    io.stderr(`Error: ${errorMessage(error)}\n`);
    return EXIT_FAILED;
  }
}

/** Parses the command line into a request; throws UsageError with a message a user can act on. */
export function parseAddArgs(argv: readonly string[]): AddRequest | 'help' {
  const { args, explicitlyFalse } = expandBooleanValues(argv);
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        recursive: { type: 'boolean', short: 'r' },
        quiet: { type: 'boolean', short: 'q' },
        quieter: { type: 'boolean', short: 'Q' },
        hidden: { type: 'boolean', short: 'H' },
        'raw-leaves': { type: 'boolean' },
        'cid-version': { type: 'string' },
        profile: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    // node:util messages already name the option, e.g. "Unknown option '--chunker'".
    throw new UsageError(errorMessage(error));
  }
  const { values, positionals } = parsed;
  if (values.help === true) return 'help';

  if (positionals.length === 0) throw new UsageError('a path to add is required');
  if (positionals.length > 1) throw new UsageError(`add takes one path, got ${positionals.length}: ${positionals.join(' ')}`);
  const path = positionals[0] as string;

  const input: ImportOptionsInput = {};
  if (values.profile !== undefined) input.profile = parseProfile(values.profile);
  if (values['cid-version'] !== undefined) input.cidVersion = parseCidVersion(values['cid-version']);
  if (values['raw-leaves'] === true) input.rawLeaves = true;
  if (explicitlyFalse.has('raw-leaves')) input.rawLeaves = false;
  const checked = importOptionsInputSchema.safeParse(input);
  if (!checked.success) throw new UsageError(checked.error.issues.map((issue) => issue.message).join('; '));

  return {
    path,
    output: values.quieter === true ? 'quieter' : values.quiet === true ? 'quiet' : 'full',
    recursive: values.recursive === true,
    store: { import: checked.data, includeHidden: values.hidden === true },
  };
}

/**
 * Kubo's boolean flags take `--flag=true|false`; node:util's parseArgs refuses a value on a
 * boolean, so `=true` becomes the bare flag and `=false` is dropped and remembered.
 */
function expandBooleanValues(argv: readonly string[]): { args: string[]; explicitlyFalse: Set<string> } {
  const args: string[] = [];
  const explicitlyFalse = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      args.push(...argv.slice(i));
      break;
    }
    const match = /^--([a-z-]+)=(.*)$/.exec(arg);
    const name = match?.[1];
    if (match === null || name === undefined || !BOOLEAN_FLAGS.has(name)) {
      args.push(arg);
      continue;
    }
    const value = match[2];
    if (value === 'true') {
      args.push(`--${name}`);
      explicitlyFalse.delete(name);
    } else if (value === 'false') {
      explicitlyFalse.add(name);
    } else {
      throw new UsageError(`--${name} takes true or false, got "${value}"`);
    }
  }
  return { args, explicitlyFalse };
}

function parseProfile(value: string): NonNullable<ImportOptionsInput['profile']> {
  // Kubo accepts legacy-cid-v0 as another name for unixfs-v0-2015 (config/profile.go).
  const name = value === 'legacy-cid-v0' ? 'unixfs-v0-2015' : value;
  const profile = CID_PROFILES.find((candidate) => candidate === name);
  if (profile === undefined) throw new UsageError(`--profile must be one of ${CID_PROFILES.join(', ')}, got "${value}"`);
  return profile;
}

function parseCidVersion(value: string): 0 | 1 {
  if (value === '0') return 0;
  if (value === '1') return 1;
  throw new UsageError(`--cid-version must be 0 or 1, got "${value}"`);
}

/**
 * Kubo prints a line per added file and folder, then the root. The store reports the top level
 * only, so this prints the top-level entries (files and links first, then folders, as Kubo
 * finishes folders last) and the root.
 */
function outputLines(request: AddRequest, result: AddResult): string[] {
  if (request.output === 'quieter') return [result.cid];
  const rootName = basename(resolve(request.path));
  const ordered = [
    ...result.entries.filter((entry) => entry.kind !== 'directory'),
    ...result.entries.filter((entry) => entry.kind === 'directory'),
  ];
  const lines = ordered.map((entry: AddedEntry) => ({ cid: entry.cid, name: `${rootName}/${entry.name}` }));
  lines.push({ cid: result.cid, name: rootName });
  return lines.map(({ cid, name }) => (request.output === 'quiet' ? cid : `added ${cid} ${name}`));
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The `task-mgmt add` subcommand: the worker's own IPFS import, from the command line. */
export async function add(config: Config, argv: string[]): Promise<number> {
  return addCommand(
    argv,
    { stdout: (text) => process.stdout.write(text), stderr: (text) => process.stderr.write(text) },
    {
      // The configured store: with IPFS_API_URL the add is published to that Kubo and pinned there.
      createStore: (request) =>
        loadIpfsStore({
          dataDir: config.DATA_DIR,
          apiUrl: config.IPFS_API_URL,
          includeHidden: request.includeHidden,
          profile: { ...(config.IPFS_CID_PROFILE ? { profile: config.IPFS_CID_PROFILE } : {}), ...request.import },
        }),
    },
  );
}
