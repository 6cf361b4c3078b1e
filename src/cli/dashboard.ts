/**
 * Wires the dashboard for `serve`: the run service's use cases and reads, the API's door for
 * starting runs, the App's repositories, and sign-in from GITHUB_CLIENT_ID and
 * GITHUB_CLIENT_SECRET. The session key is SESSION_SECRET, or derived from the App's secrets.
 */
import type { Logger } from 'pino';
import type { Probot } from 'probot';
import type { Config } from '../config.js';
import { createDashboard, type Dashboard } from '../adapters/dashboard/dashboard.js';
import { sessionKey } from '../adapters/dashboard/session.js';
import { installedRepositories } from '../adapters/github/installed-repositories.js';
import type { RunUseCases } from '../adapters/http/run-operations.js';
import { RunViews } from '../core/run-service/run-views.js';
import type { RunService } from '../core/run-service/run-service.js';
import type { RepoRef } from '../core/runs/run.js';
import type { RepoHost } from '../ports/repo-host.js';
import type { RunStore } from '../ports/run-store.js';
import { builtInTaskTypes } from '../../tasks/index.js';

export function dashboardFor(
  config: Config,
  parts: { app: Pick<Probot, 'auth'>; store: RunStore; runs: RunService; starts: RunUseCases; hostFor: (repo: RepoRef) => Promise<RepoHost>; publicUrl: string; log: Logger },
): Dashboard {
  const webUrl = config.GHE_HOST ? `${config.GHE_PROTOCOL}://${config.GHE_HOST}` : 'https://github.com';
  return createDashboard({
    store: parts.store,
    reads: parts.runs,
    views: new RunViews({ hostFor: parts.hostFor, taskTypes: builtInTaskTypes, defaultImage: config.PROCFILE_IMAGE, canRead: (who, repo) => parts.runs.canRead(who, repo) }),
    starts: parts.starts,
    service: parts.runs,
    repositories: installedRepositories(parts.app),
    visibility: async (repo) => (await parts.hostFor(repo)).getVisibility(),
    ...(config.GITHUB_CLIENT_ID && config.GITHUB_CLIENT_SECRET
      ? {
          signIn: {
            clientId: config.GITHUB_CLIENT_ID,
            clientSecret: config.GITHUB_CLIENT_SECRET,
            webUrl,
            apiUrl: config.githubApiUrl,
            redirectUri: `${parts.publicUrl}/login/callback`,
          },
        }
      : {}),
    sessionKey: sessionKey({ sessionSecret: config.SESSION_SECRET, privateKey: config.privateKey, clientSecret: config.GITHUB_CLIENT_SECRET }),
    publicUrl: parts.publicUrl,
    gatewayUrl: config.IPFS_GATEWAY_URL,
    githubWebUrl: webUrl,
    log: parts.log,
  });
}
