/**
 * GithubSourceFetcher against the SourceFetcher contract, on the fake GitHub (test/fake-github/):
 * the tarball endpoint's redirect to a codeload link, and `git archive` bytes behind it. The tests
 * share one repository; each commit goes on its default branch and replaces the whole tree.
 */
import { randomUUID } from 'node:crypto';
import type { Probot } from 'probot';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Octokit } from '../../src/adapters/github/octokit.js';
import { GithubSourceFetcher } from '../../src/adapters/source/github-source-fetcher.js';
import { probotFor } from '../support/fake-github-probot.js';
import { FakeGitHub, type Repo } from '../fake-github/index.js';
import { sourceFetcherContract } from './source-fetcher.contract.js';

let gh: FakeGitHub;
let probot: Probot;
let repo: Repo | undefined;
/** The files of the default branch's head. */
let tree: Record<string, string> = {};

beforeAll(async () => {
  gh = await FakeGitHub.start();
  probot = probotFor(gh);
});

afterAll(async () => {
  await gh?.close();
});

sourceFetcherContract(
  'GithubSourceFetcher on the fake GitHub',
  async () => {
    const violationsBefore = gh.openapiViolations.length;
    const unhandledBefore = gh.unhandled.length;
    return {
      fetcher: new GithubSourceFetcher({ octokitFor: async (installationId) => (await probot.auth(installationId)) as Octokit }),
      commit: async (files) => {
        if (!repo) {
          repo = await gh.createRepo({ owner: 'octo-org', name: `source-${randomUUID().slice(0, 8)}`, files });
        } else {
          // Paths of the previous tree that are not in this one are deleted, so the tree is exactly `files`.
          const removed = Object.fromEntries(Object.keys(tree).filter((path) => !(path in files)).map((path) => [path, null]));
          await gh.commit(repo, repo.defaultBranch, { ...removed, ...files });
        }
        tree = files;
        return { repo: { owner: repo.owner, name: repo.name, installationId: gh.installationId }, sha: gh.headOf(repo, repo.defaultBranch) };
      },
      cleanup: async () => {
        expect(gh.openapiViolations.slice(violationsBefore)).toStrictEqual([]);
        expect(gh.unhandled.slice(unhandledBefore)).toStrictEqual([]);
      },
    };
  },
  { history: true },
);
