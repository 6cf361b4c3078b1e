/** The repositories the App is installed on, asked of GitHub as the App, kept for a minute. */
import type { Probot } from 'probot';
import type { RepoRef } from '../../core/runs/run.js';

export function installedRepositories(probot: Pick<Probot, 'auth'>, keepMs = 60_000): () => Promise<RepoRef[]> {
  let known: { repos: Promise<RepoRef[]>; until: number } | null = null;
  const ask = async (): Promise<RepoRef[]> => {
    const app = await probot.auth();
    const installations = await app.paginate(app.rest.apps.listInstallations, { per_page: 100 });
    const repos: RepoRef[] = [];
    for (const installation of installations) {
      const octokit = await probot.auth(installation.id);
      const listed = await octokit.paginate(octokit.rest.apps.listReposAccessibleToInstallation, { per_page: 100 });
      for (const repo of listed) repos.push({ owner: repo.owner.login, name: repo.name, installationId: installation.id });
    }
    return repos;
  };
  return () => {
    const now = Date.now();
    if (known && known.until > now) return known.repos;
    const repos = ask();
    known = { repos, until: now + keepMs };
    repos.catch(() => {
      known = null;
    });
    return repos;
  };
}
