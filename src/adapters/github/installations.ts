/** Which installation of the App can act on a repository, asked of GitHub as the App. */
import type { Probot } from 'probot';
import { httpStatus } from './octokit.js';

/** The installation id, or null when the App is not installed there (or there is no such repository). */
export function installationResolver(probot: Probot): (repo: { owner: string; name: string }) => Promise<number | null> {
  return async ({ owner, name }) => {
    try {
      const app = await probot.auth();
      return (await app.rest.apps.getRepoInstallation({ owner, repo: name })).data.id;
    } catch (error) {
      if (httpStatus(error) === 404) return null;
      throw error;
    }
  };
}
