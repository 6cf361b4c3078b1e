/**
 * GithubCheckReporter against the CheckReporter contract, on the fake GitHub (test/fake-github/):
 * real HTTP, Probot's installation auth, GitHub's 422 validation of check-run bodies. The tests
 * share one repository (each check run is told apart by its id) and read check runs back from the
 * fake's records.
 */
import { randomUUID } from 'node:crypto';
import type { Probot } from 'probot';
import { afterAll, beforeAll, expect } from 'vitest';
import { GithubCheckReporter } from '../../src/adapters/github/github-check-reporter.js';
import type { Octokit } from '../../src/adapters/github/octokit.js';
import { probotFor } from '../support/fake-github-probot.js';
import { FakeGitHub, type Repo } from '../fake-github/index.js';
import { checkReporterContract } from './check-reporter.contract.js';

let gh: FakeGitHub;
let probot: Probot;
let repo: Repo;

beforeAll(async () => {
  gh = await FakeGitHub.start();
  probot = probotFor(gh);
  repo = await gh.createRepo({ owner: 'octo-org', name: `checks-${randomUUID().slice(0, 8)}`, files: { Dockerfile: 'FROM busybox\n' } });
});

afterAll(async () => {
  await gh?.close();
});

checkReporterContract(
  'GithubCheckReporter on the fake GitHub',
  async () => {
    const violationsBefore = gh.openapiViolations.length;
    const unhandledBefore = gh.unhandled.length;
    const reporter = new GithubCheckReporter({ octokitFor: async (installationId) => (await probot.auth(installationId)) as Octokit });
    return {
      reporter,
      repo: { owner: repo.owner, name: repo.name, installationId: gh.installationId },
      sha: gh.headOf(repo, repo.defaultBranch),
      readBack: async (checkRunId) => {
        const record = gh.checkRuns(repo).find((checkRun) => checkRun.id === checkRunId);
        if (!record) return undefined;
        return {
          sha: record.headSha,
          name: record.name,
          status: record.status,
          conclusion: record.conclusion,
          title: record.output.title,
          summary: record.output.summary,
          text: record.output.text,
          actions: record.actions,
        };
      },
      cleanup: async () => {
        // Every request this test made was one GitHub serves, with a body GitHub's schema allows.
        expect(gh.openapiViolations.slice(violationsBefore)).toStrictEqual([]);
        expect(gh.unhandled.slice(unhandledBefore)).toStrictEqual([]);
      },
    };
  },
  { readBack: true },
);
