/**
 * Scheduled runs (README "Schedules"): the `schedule:` of each task in a repository's default-branch
 * manifest fires a run of that task at the default branch's HEAD, as the App, through the run
 * service like `/run` on an issue (so the org policy, the check runs and the audit log apply).
 *
 * One firing per slot across replicas, whatever the queue: each schedule has a named lease in the
 * run store that covers the time from a firing to the next slot. A replica fires only if it takes
 * that lease as of the latest slot due, which it can only when no one has covered that slot yet.
 * The lease therefore also remembers the last firing: after a time when everything was down, the
 * latest slot missed is due and fires once at start-up, not once per missed slot. A schedule seen
 * for the first time covers until its next slot, so it never fires for slots before it existed.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { RepoHost } from '../../ports/repo-host.js';
import type { NamedLeases } from '../../ports/run-store.js';
import { readManifest } from '../manifest/read-manifest.js';
import type { TaskTypeCatalog } from '../manifest/load-manifest.js';
import type { RepoRef } from '../runs/run.js';
import type { RequestOutcome } from '../run-service/outcomes.js';
import type { RunRequest } from '../run-service/requests.js';
import { lastFiring, nextFiring, shortestInterval, type CronSpec } from './cron.js';

export interface Schedule extends CronSpec {
  repo: RepoRef;
  task: string;
}

export interface SchedulerDeps {
  /** The run service's `request`: a firing is a request like any other. */
  request: (request: RunRequest) => Promise<RequestOutcome>;
  leases: NamedLeases;
  hostFor: (repo: RepoRef) => Promise<RepoHost>;
  /** Every repository the App is installed on, read at start-up. */
  listRepos: () => Promise<RepoRef[]>;
  taskTypes: TaskTypeCatalog;
  defaultImage: string;
  now: () => Date;
  /** The App's login, as which scheduled runs are requested. */
  appLogin: string;
  log?: (level: 'info' | 'warn', message: string, facts: Record<string, unknown>) => void;
}

/** The run store's lease name of one schedule: a changed expression is a new schedule. */
export function scheduleLeaseName(schedule: Pick<Schedule, 'repo' | 'task' | 'cron' | 'timezone'>): string {
  const digest = createHash('sha256').update(`${schedule.cron.trim()}\0${schedule.timezone}`).digest('hex').slice(0, 16);
  return `schedule:${schedule.repo.owner.toLowerCase()}/${schedule.repo.name.toLowerCase()}:${schedule.task}:${digest}`;
}

const repoKey = (repo: Pick<RepoRef, 'owner' | 'name'>) => `${repo.owner}/${repo.name}`.toLowerCase();

export class Scheduler {
  private readonly byRepo = new Map<string, Schedule[]>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | null = null;

  constructor(private readonly deps: SchedulerDeps) {}

  /** Every schedule known, in no particular order. */
  get schedules(): Schedule[] {
    return [...this.byRepo.values()].flat();
  }

  /** Reads the schedules of every installed repository (at start-up). A repository that cannot be read is logged and skipped. */
  async loadAll(): Promise<number> {
    const repos = await this.deps.listRepos();
    for (const repo of repos) {
      await this.load(repo).catch((error: unknown) =>
        this.deps.log?.('warn', `could not read the schedules of ${repo.owner}/${repo.name}`, { error: error instanceof Error ? error.message : String(error) }),
      );
    }
    return this.schedules.length;
  }

  /**
   * Reads a repository's schedules from its default branch's manifest now (at start-up, and on a
   * push to the default branch): new ones are registered, removed tasks lose theirs.
   */
  async load(repo: RepoRef): Promise<Schedule[]> {
    const host = await this.deps.hostFor(repo);
    const head = await host.getDefaultBranchHead();
    const read = await readManifest(host, head.sha, this.deps.taskTypes, this.deps.defaultImage);
    const found: Schedule[] = read.ok ? read.manifest.tasks.flatMap((task) => (task.schedule ?? []).map((spec) => ({ ...spec, repo, task: task.name }))) : [];
    // An unreadable manifest keeps no schedule: a broken default branch runs nothing by itself.
    const now = this.deps.now();
    for (const schedule of found) {
      // Taken only when the lease does not exist yet (no lease ends before the epoch's first millisecond).
      await this.deps.leases.takeLease(scheduleLeaseName(schedule), `registered:${randomUUID()}`, nextFiring(schedule, now), new Date(0));
    }
    const before = this.byRepo.get(repoKey(repo)) ?? [];
    if (found.length > 0) this.byRepo.set(repoKey(repo), found);
    else this.byRepo.delete(repoKey(repo));
    if (before.length !== found.length || before.some((s, i) => scheduleLeaseName(s) !== scheduleLeaseName(found[i]!))) {
      this.deps.log?.('info', `${repo.owner}/${repo.name} has ${found.length} schedule(s)`, { schedules: found.map((s) => `${s.task}: ${s.cron} ${s.timezone}`) });
    }
    return found;
  }

  /** Fires every schedule that is due and not yet fired by any replica. Returns the firings made. */
  async tick(): Promise<{ schedule: Schedule; outcome: RequestOutcome }[]> {
    const now = this.deps.now();
    const fired: { schedule: Schedule; outcome: RequestOutcome }[] = [];
    for (const schedule of this.schedules) {
      const due = lastFiring(schedule, now);
      // Covers up to the next slot; free again then. A fresh holder, so a replica never "renews" its own firing.
      const mine = await this.deps.leases.takeLease(scheduleLeaseName(schedule), `fired:${randomUUID()}`, nextFiring(schedule, now), due);
      if (!mine) continue;
      fired.push({ schedule, outcome: await this.fire(schedule, due) });
    }
    return fired;
  }

  /** Ticks every `intervalMs` (a missed slot fires at the first tick, so at start-up too). */
  start(intervalMs: number): { stop(): Promise<void> } {
    const run = () => {
      if (this.ticking) return;
      this.ticking = this.tick()
        .then(() => undefined)
        .catch((error: unknown) => this.deps.log?.('warn', 'schedules could not be checked', { error: error instanceof Error ? error.message : String(error) }))
        .finally(() => {
          this.ticking = null;
        });
    };
    run();
    this.timer = setInterval(run, intervalMs);
    return {
      stop: async () => {
        clearInterval(this.timer);
        await this.ticking;
      },
    };
  }

  private async fire(schedule: Schedule, due: Date): Promise<RequestOutcome> {
    const facts = { repo: repoKey(schedule.repo), task: schedule.task, cron: schedule.cron, timezone: schedule.timezone, due: due.toISOString() };
    let outcome: RequestOutcome;
    try {
      outcome = await this.deps.request({
        requester: { kind: 'app', login: this.deps.appLogin },
        repo: schedule.repo,
        target: { kind: 'default_branch' },
        task: schedule.task,
        params: {},
        trigger: 'schedule',
        commentId: null,
        scheduleIntervalMs: shortestInterval(schedule, due),
      });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.deps.log?.('warn', `scheduled run of ${schedule.task} could not be decided`, { ...facts, error: reason });
      return { kind: 'refused', code: 'not_runnable', reason };
    }
    if (outcome.kind === 'refused') this.deps.log?.('warn', `scheduled run of ${schedule.task} refused: ${outcome.reason}`, facts);
    else this.deps.log?.('info', `scheduled run of ${schedule.task} ${outcome.kind}`, { ...facts, sha: outcome.sha });
    return outcome;
  }
}
