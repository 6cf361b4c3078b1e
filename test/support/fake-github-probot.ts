/**
 * A Probot that talks to the fake GitHub as the App, for tests that drive the GitHub adapters in
 * process. Octokit spaces writes a second apart to spare github.com; the fake needs no sparing,
 * so the throttle is off here (and only here: the app itself keeps it).
 */
import type { Logger } from 'pino';
import { Probot, ProbotOctokit } from 'probot';
import type { FakeGitHub } from '../fake-github/index.js';

export function probotFor(gh: FakeGitHub, options: { log?: Logger } = {}): Probot {
  return new Probot({
    appId: gh.appId,
    privateKey: gh.privateKey,
    secret: gh.webhookSecret,
    baseUrl: `${gh.url}/api/v3`,
    ...(options.log ? { log: options.log } : { logLevel: 'warn' }),
    Octokit: ProbotOctokit.defaults((octokitOptions: object & { throttle?: object }) => ({ ...octokitOptions, throttle: { ...octokitOptions.throttle, enabled: false } })),
  });
}
