import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { validate } from './validate.js';
import { orgPolicyJsonSchema } from '../core/run-service/run-service.js';

describe('task-mgmt validate --org <file>', () => {
  let dir: string;
  const config = () => loadConfig({ DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'silent' }, { takesWebhooks: false });
  const io = () => {
    const lines: string[] = [];
    const errors: string[] = [];
    return { lines, errors, out: (line: string) => lines.push(line), err: (line: string) => errors.push(line) };
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'validate-org-'));
    await writeFile(join(dir, 'org.yml'), 'version: 1\nallow: { types: [container] }\nlimits: { memory: 2g, schedule_every: 1h }\nrepositories: { exclude: [legacy] }\n');
    await writeFile(join(dir, 'bad.yml'), 'version: 1\nlimits:\n  pids: many\n');
    await mkdir(join(dir, 'repo'));
    await writeFile(join(dir, 'repo', 'task-mgmt.yml'), 'version: 1\ntasks:\n  big:\n    dockerfile: Dockerfile\n    resources: { memory: 8g }\n');
    await writeFile(join(dir, 'repo', 'Dockerfile'), 'FROM busybox\n');
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('prints the effective limits of a valid file', async () => {
    const run = io();
    expect(await validate(config(), ['--org', join(dir, 'org.yml')], run.out, run.err)).toBe(0);
    const text = run.lines.join('\n');
    expect(text).toContain('task types: `container`');
    expect(text).toContain('2.0 GiB memory');
    expect(text).toContain('schedules: at most once every 1 h');
    expect(text).toContain('every repository but: legacy');
  });

  it('names the line and field of an invalid file, exit 1', async () => {
    const run = io();
    expect(await validate(config(), ['--org', join(dir, 'bad.yml')], run.out, run.err)).toBe(1);
    expect(run.lines[0]).toMatch(/bad\.yml:3: limits\.pids: /);
  });

  it('says whether the org policy would refuse a folder\'s tasks', async () => {
    const run = io();
    expect(await validate(config(), [join(dir, 'repo'), '--org', join(dir, 'org.yml')], run.out, run.err)).toBe(1);
    expect(run.lines.join('\n')).toMatch(/The org policy would refuse it: the task `big` asks for 8\.0 GiB of memory; `limits\.memory`/);
  });

  it('the committed task-mgmt-org.schema.json is the org schema (npm run schema writes it)', async () => {
    const committed = JSON.parse(await readFile(join(import.meta.dirname, '..', '..', 'task-mgmt-org.schema.json'), 'utf8')) as unknown;
    expect(committed).toEqual(JSON.parse(JSON.stringify(orgPolicyJsonSchema())));
  });

  it('a missing file or argument is a usage error', async () => {
    const run = io();
    expect(await validate(config(), ['--org'], run.out, run.err)).toBe(2);
    expect(await validate(config(), ['--org', join(dir, 'nope.yml')], run.out, run.err)).toBe(2);
    expect(run.errors.join('\n')).toContain('cannot read');
  });
});
