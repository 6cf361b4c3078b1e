/**
 * OctokitRepoHost against the RepoHost contract, on the fake GitHub (test/fake-github/): real
 * HTTP, real git trees and diffs, GitHub's paging. The tests share one private repository (so a
 * user without a role has none, not read); each pull request gets its own branch. The fake sends
 * webhooks for pull requests and reviews, which a small local server takes and drops.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Octokit } from '../../src/adapters/github/octokit.js';
import { OctokitRepoHost } from '../../src/adapters/github/octokit-repo-host.js';
import { probotFor } from '../support/fake-github-probot.js';
import { FakeGitHub, type Repo } from '../fake-github/index.js';
import { baseTree, repoHostContract } from './repo-host.contract.js';

let gh: FakeGitHub;
let octokit: Octokit;
let repo: Repo;
let webhooks: Server;

beforeAll(async () => {
  gh = await FakeGitHub.start();
  webhooks = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200).end('ok'));
  });
  await new Promise<void>((resolve) => webhooks.listen(0, '127.0.0.1', resolve));
  gh.setWebhookTarget(`http://127.0.0.1:${(webhooks.address() as AddressInfo).port}/api/github/webhooks`);
  const probot = probotFor(gh);
  octokit = (await probot.auth(gh.installationId)) as Octokit;
  repo = await gh.createRepo({ owner: 'octo-org', name: `host-${randomUUID().slice(0, 8)}`, files: baseTree, private: true });
});

afterAll(async () => {
  await gh?.close();
  await new Promise((resolve) => webhooks?.close(resolve));
});

repoHostContract(
  'OctokitRepoHost on the fake GitHub',
  async () => {
    const violationsBefore = gh.openapiViolations.length;
    const unhandledBefore = gh.unhandled.length;
    return {
      host: new OctokitRepoHost(octokit, { owner: repo.owner, name: repo.name }),
      head: { branch: repo.defaultBranch, sha: gh.headOf(repo, repo.defaultBranch) },
      visibility: 'private',
      setRole: async (login, role) => {
        // A login GitHub knows (the fake learns it from a token) but with no role here.
        if (role === null) gh.userToken(login);
        else gh.setRole(repo, login, role);
      },
      pullRequests: {
        open: async ({ author, changes, renames = [] }) => {
          const branch = `pr-${randomUUID().slice(0, 8)}`;
          const moved = Object.fromEntries(renames.flatMap(([from, to]) => [[from, null], [to, baseTree[from]!]]));
          await gh.commit(repo, branch, { ...moved, ...changes });
          const { number } = await gh.openPullRequest(repo, { author, head: branch });
          return { number, headSha: gh.headOf(repo, branch) };
        },
        push: async (number, changes) => (await gh.pushToPullRequest(repo, number, changes)).after,
        review: async (number, reviewer, state, commitId) => (await gh.review(repo, number, reviewer, state, commitId)).reviewId,
      },
      cleanup: async () => {
        expect(gh.openapiViolations.slice(violationsBefore)).toStrictEqual([]);
        expect(gh.unhandled.slice(unhandledBefore)).toStrictEqual([]);
      },
    };
  },
  { roles: true, pullRequests: true },
);
