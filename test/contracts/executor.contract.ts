/**
 * What every Executor adapter must do (src/ports/executor.ts, README "The sandbox"): build
 * the task from its Dockerfile and run it in a sandbox with no network, a read-only root, writable
 * /tmp and /out, no capabilities, a non-root user, the environment it is given and nothing else,
 * the limits it is given; kill it at the timeout or when the signal aborts; report the exit code;
 * pass every line to onLog in order; let beforeStart refuse at the last moment; fail a broken
 * build with BuildFailedError; and leave nothing of a run behind.
 *
 * Every case runs the same build context (one Dockerfile and a script that picks its case from
 * TASK_CASE), so an adapter can build the image once when the suite opens and every case after
 * that is a cached build. Only `broken.Dockerfile` builds anything else.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BuildFailedError, type ExecuteRequest, type ExecuteResult, type Executor, type SandboxLimits } from '../../src/ports/executor.js';

export interface ExecutorContext {
  /** The build context every case uses. */
  contextDir: string;
  /** Its Dockerfile, relative to contextDir. */
  dockerfile: string;
}

export interface OpenedExecutor {
  executor: Executor;
  /** What is left of a run after execute returned (containers, images…); must be empty. */
  leftoversOf(runId: string): Promise<string[]>;
  cleanup(): Promise<void>;
}

const MiB = 1024 * 1024;
const limits: SandboxLimits = { memoryBytes: 256 * MiB, nanoCpus: 1_000_000_000, pidsLimit: 64, timeoutMs: 30_000 };

/** Printed first by every case, so the case's own lines can be told from the build's. */
const startMarker = '== case starts ==';

const caseScript = `#!/bin/sh
echo '${startMarker}'
case "$TASK_CASE" in
  write)
    echo writing
    echo hello > /out/result.txt
    mkdir /out/sub && printf deep > /out/sub/f
    echo done ;;
  exit)
    echo to-stdout
    echo to-stderr >&2
    exit "$TASK_EXIT_CODE" ;;
  env)
    env ;;
  sandbox)
    echo "network: $(ls /sys/class/net | tr '\\n' ' ')"
    if touch /root-probe 2>/dev/null; then echo 'root: writable'; else echo 'root: read-only'; fi
    touch /tmp/probe && echo 'tmp: writable'
    touch /out/probe && echo 'out: writable'
    echo "uid: $(id -u)"
    grep -E '^(CapEff|NoNewPrivs):' /proc/self/status | tr -s ' \\t' ' ' ;;
  limits)
    if [ -f /sys/fs/cgroup/memory.max ]; then
      echo "memory: $(cat /sys/fs/cgroup/memory.max)"
      echo "pids: $(cat /sys/fs/cgroup/pids.max)"
      set -- $(cat /sys/fs/cgroup/cpu.max)
      echo "cpu: $1/$2"
    else
      echo "memory: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
      echo "pids: $(cat /sys/fs/cgroup/pids/pids.max)"
      echo "cpu: $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)/$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"
    fi ;;
  memory-hog)
    echo allocating
    hog=$(head -c 1000000000 /dev/zero | tr '\\0' x)
    echo "survived with \${#hog} bytes" ;;
  lines)
    i=1
    while [ $i -le 300 ]; do echo "line $i"; i=$((i + 1)); done ;;
  flood)
    seq 1 20000 | sed 's/^/line /' ;;
  endless-line)
    head -c 300000 /dev/zero | tr '\\0' y
    echo
    echo after ;;
  mounts)
    cat /in/previous/input.txt
    if touch /in/previous/probe 2>/dev/null; then echo 'in: writable'; else echo 'in: read-only'; fi ;;
  sleep)
    echo started
    exec sleep 600 ;;
  *)
    echo "no case $TASK_CASE" >&2
    exit 99 ;;
esac
`;

interface CaseRun {
  request: ExecuteRequest;
  /** Every line given to onLog. */
  lines: string[];
  /** The lines the case printed after its start marker. */
  output(): string[];
}

export function executorContract(name: string, open: (context: ExecutorContext) => Promise<OpenedExecutor>): void {
  describe(`Executor contract: ${name}`, () => {
    let opened: OpenedExecutor;
    let contextDir: string;
    const dirs: string[] = [];
    const runIds: string[] = [];

    beforeAll(async () => {
      contextDir = await mkdtemp(join(tmpdir(), 'task-mgmt-executor-context-'));
      await writeFile(join(contextDir, 'Dockerfile'), 'FROM busybox\nCOPY case.sh /case.sh\nCMD ["sh", "/case.sh"]\n');
      await writeFile(join(contextDir, 'broken.Dockerfile'), 'FROM busybox\nRUN echo before-failure && exit 7\n');
      await writeFile(join(contextDir, 'case.sh'), caseScript);
      opened = await open({ contextDir, dockerfile: 'Dockerfile' });
    });

    afterEach(async () => {
      for (const runId of runIds.splice(0)) expect(await opened.leftoversOf(runId), `left behind by ${runId}`).toStrictEqual([]);
    });

    afterAll(async () => {
      await opened?.cleanup();
      await Promise.all([contextDir, ...dirs].filter(Boolean).map((dir) => rm(dir, { recursive: true, force: true })));
    });

    async function tempDir(): Promise<string> {
      const dir = await mkdtemp(join(tmpdir(), 'task-mgmt-executor-'));
      dirs.push(dir);
      return dir;
    }

    /** A request for one case, with a fresh run id and outDir. `onLine` sees each line as it comes. */
    async function prepare(taskCase: string, overrides: Partial<ExecuteRequest> = {}, onLine?: (line: string) => void): Promise<CaseRun> {
      const runId = `contract-${randomUUID().slice(0, 8)}`;
      runIds.push(runId);
      const lines: string[] = [];
      const request: ExecuteRequest = {
        runId,
        contextDir,
        dockerfile: 'Dockerfile',
        outDir: await tempDir(),
        env: { TASK_CASE: taskCase, TASK_RUN_ID: runId },
        limits,
        signal: new AbortController().signal,
        onLog: (line) => {
          lines.push(line);
          onLine?.(line);
        },
        ...overrides,
      };
      return { request, lines, output: () => (lines.includes(startMarker) ? lines.slice(lines.indexOf(startMarker) + 1) : []) };
    }

    async function execute(run: CaseRun): Promise<ExecuteResult> {
      return opened.executor.execute(run.request);
    }

    it('runs the task: what it writes to /out is on the host, exit code 0, each line logged', async () => {
      const run = await prepare('write');
      const result = await execute(run);
      expect(result).toMatchObject({ exitCode: 0, timedOut: false, cancelled: false });
      expect(result.imageId).not.toBe('');
      expect(result.durationMs).toBeGreaterThanOrEqual(0);
      expect(run.output()).toStrictEqual(['writing', 'done']);
      expect(await readFile(join(run.request.outDir, 'result.txt'), 'utf8')).toBe('hello\n');
      expect(await readFile(join(run.request.outDir, 'sub', 'f'), 'utf8')).toBe('deep');
    });

    it('reports a non-zero exit code, with what the task printed on stdout and stderr', async () => {
      const run = await prepare('exit');
      run.request.env.TASK_EXIT_CODE = '3';
      expect(await execute(run)).toMatchObject({ exitCode: 3, timedOut: false, cancelled: false });
      expect(run.output().sort()).toStrictEqual(['to-stderr', 'to-stdout']);
    });

    it('passes every line to onLog in the order printed', async () => {
      const run = await prepare('lines');
      expect((await execute(run)).exitCode).toBe(0);
      expect(run.output()).toStrictEqual(Array.from({ length: 300 }, (_, index) => `line ${index + 1}`));
    });

    it('stops reading while onLog asks it to wait, and loses no line', async () => {
      let waiting = false;
      let arrivedWhileWaiting = 0;
      const run = await prepare('flood', {}, () => {
        if (waiting) arrivedWhileWaiting += 1;
      });
      const log = run.request.onLog;
      run.request.onLog = (line) => {
        void log(line);
        if (line !== 'line 100') return undefined;
        // The log store is slow once: until it catches up, only output already read may arrive.
        waiting = true;
        return new Promise<void>((resolve) => setTimeout(resolve, 500)).then(() => {
          waiting = false;
        });
      };
      expect((await execute(run)).exitCode).toBe(0);
      expect(run.output()).toStrictEqual(Array.from({ length: 20_000 }, (_, index) => `line ${index + 1}`));
      // 20,000 lines are over 200 KB: without back-pressure every one of them arrives during the wait.
      expect(arrivedWhileWaiting).toBeLessThan(15_000);
    });

    it('cuts a line that never ends at 64 KiB, and goes on with the next', async () => {
      const run = await prepare('endless-line');
      expect((await execute(run)).exitCode).toBe(0);
      expect(run.output()).toStrictEqual([`${'y'.repeat(64 * 1024)}… (line cut)`, 'after']);
    });

    it('gives the task the environment it is given and nothing of the worker’s', async () => {
      process.env.TASK_MGMT_CONTRACT_SECRET = 'must-not-leak';
      try {
        const run = await prepare('env');
        Object.assign(run.request.env, { TASK_PARAM_URL: 'https://example.com/a b?c=d&e="f"', TASK_PARAM_EMPTY: '', TASK_PARAM_UNICODE: 'Grüße ✓' });
        expect((await execute(run)).exitCode).toBe(0);
        const seen = Object.fromEntries(run.output().map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
        expect(seen).toMatchObject({ ...run.request.env, TASK_OUTPUT_DIR: '/out' });
        // What else is there comes from the image (PATH) or the shell and the engine themselves.
        const allowed = new Set([...Object.keys(run.request.env), 'TASK_OUTPUT_DIR', 'PATH', 'HOSTNAME', 'HOME', 'PWD', 'SHLVL']);
        expect(Object.keys(seen).filter((variable) => !allowed.has(variable))).toStrictEqual([]);
      } finally {
        delete process.env.TASK_MGMT_CONTRACT_SECRET;
      }
    });

    it('sandboxes the task: loopback only, read-only root, writable /tmp and /out, not root, no capabilities', async () => {
      const run = await prepare('sandbox');
      expect((await execute(run)).exitCode).toBe(0);
      const [network, root, tmp, out, uid, ...status] = run.output();
      expect({ network: network?.trim(), root, tmp, out }).toStrictEqual({ network: 'network: lo', root: 'root: read-only', tmp: 'tmp: writable', out: 'out: writable' });
      expect(uid).toMatch(/^uid: \d+$/);
      expect(uid).not.toBe('uid: 0');
      expect(status).toStrictEqual(['CapEff: 0000000000000000', 'NoNewPrivs: 1']);
    });

    it('applies the memory, CPU and process limits it is given', async () => {
      const given: SandboxLimits = { memoryBytes: 96 * MiB, nanoCpus: 500_000_000, pidsLimit: 48, timeoutMs: 30_000 };
      const run = await prepare('limits', { limits: given });
      expect((await execute(run)).exitCode).toBe(0);
      const [memory, pids, cpu] = run.output();
      expect(memory).toBe(`memory: ${given.memoryBytes}`);
      expect(pids).toBe(`pids: ${given.pidsLimit}`);
      const [quota, period] = cpu!.replace('cpu: ', '').split('/').map(Number);
      expect((quota! / period!) * 1e9).toBe(given.nanoCpus);
    });

    it('stops a task that takes more memory than its limit', async () => {
      const run = await prepare('memory-hog', { limits: { ...limits, memoryBytes: 64 * MiB } });
      const result = await execute(run);
      expect(result).toMatchObject({ timedOut: false, cancelled: false });
      expect(result.exitCode).not.toBe(0);
      expect(run.output().some((line) => line.startsWith('survived'))).toBe(false);
    });

    it('mounts the read-only folders it is given, readable and not writable', async () => {
      const previous = await tempDir();
      // Readable by any user, as the worker's folders are (mkdtemp makes them 0700).
      await chmod(previous, 0o755);
      await writeFile(join(previous, 'input.txt'), 'output of the needed task\n', { mode: 0o644 });
      const run = await prepare('mounts', { readOnlyMounts: [{ hostPath: previous, containerPath: '/in/previous' }] });
      expect((await execute(run)).exitCode).toBe(0);
      expect(run.output()).toStrictEqual(['output of the needed task', 'in: read-only']);
      expect(await readdir(previous)).toStrictEqual(['input.txt']);
    });

    it('kills a task that runs past its timeout, and says it timed out', async () => {
      const timeoutMs = 4000;
      const run = await prepare('sleep', { limits: { ...limits, timeoutMs } });
      const started = Date.now();
      const result = await execute(run);
      expect(result).toMatchObject({ timedOut: true, cancelled: false, exitCode: null });
      expect(Date.now() - started).toBeLessThan(timeoutMs + 5000);
    });

    it('kills a running task within seconds of its signal aborting, and says it was cancelled', async () => {
      const controller = new AbortController();
      let abortedAt = 0;
      const run = await prepare('sleep', { signal: controller.signal }, (line) => {
        if (line === 'started') {
          abortedAt = Date.now();
          controller.abort(new Error('cancelled by @mona'));
        }
      });
      const result = await execute(run);
      expect(abortedAt, 'the task started').toBeGreaterThan(0);
      expect(Date.now() - abortedAt).toBeLessThan(3000);
      expect(result).toMatchObject({ cancelled: true, timedOut: false, exitCode: null });
    });

    it('starts nothing when the signal is already aborted', async () => {
      const controller = new AbortController();
      controller.abort(new Error('cancelled while queued'));
      const run = await prepare('write', { signal: controller.signal });
      expect(await execute(run)).toMatchObject({ cancelled: true, timedOut: false, exitCode: null });
      expect(run.output()).toStrictEqual([]);
      expect(await readdir(run.request.outDir)).toStrictEqual([]);
    });

    it('calls beforeStart after the build and before the task starts', async () => {
      let outputWhenCalled: string[] | undefined;
      const run = await prepare('write', {
        beforeStart: async () => {
          outputWhenCalled = run.output();
        },
      });
      expect((await execute(run)).exitCode).toBe(0);
      expect(outputWhenCalled).toStrictEqual([]);
      expect(run.output()).toStrictEqual(['writing', 'done']);
    });

    it('starts nothing and rethrows when beforeStart refuses', async () => {
      const refusal = new Error('the pull request’s head moved');
      const run = await prepare('write', {
        beforeStart: async () => {
          throw refusal;
        },
      });
      await expect(execute(run)).rejects.toBe(refusal);
      expect(run.output()).toStrictEqual([]);
      expect(await readdir(run.request.outDir)).toStrictEqual([]);
    });

    it('fails a build that fails with BuildFailedError, after logging the build’s lines', async () => {
      const run = await prepare('write', { dockerfile: 'broken.Dockerfile' });
      await expect(execute(run)).rejects.toBeInstanceOf(BuildFailedError);
      expect(run.lines).toContain('before-failure');
      expect(run.output()).toStrictEqual([]);
    });
  });
}
