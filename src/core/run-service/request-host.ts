/**
 * A RepoHost for one request: each question is asked of GitHub at most once (the commenter is
 * often the pull request's author or a reviewer too), so the request waits on as few round trips
 * as possible. Failures are not remembered: asking again later asks GitHub again.
 */
import type { RepoHost } from '../../ports/repo-host.js';

export function askOnce(host: RepoHost): RepoHost {
  const answers = new Map<string, Promise<unknown>>();
  const once = <T>(key: string, ask: () => Promise<T>): Promise<T> => {
    const known = answers.get(key);
    if (known) return known as Promise<T>;
    const answer = ask();
    answers.set(key, answer);
    answer.catch(() => answers.delete(key));
    return answer;
  };
  return {
    getPermission: (user) => once(`permission\0${user.toLowerCase()}`, () => host.getPermission(user)),
    getVisibility: () => once('visibility', () => host.getVisibility()),
    getPullRequest: (number) => once(`pull\0${number}`, () => host.getPullRequest(number)),
    getDefaultBranchHead: (branch) => once(`head\0${branch ?? ''}`, () => host.getDefaultBranchHead(branch)),
    listRoot: (sha) => once(`root\0${sha}`, () => host.listRoot(sha)),
    readFile: (path, sha) => once(`file\0${sha}\0${path}`, () => host.readFile(path, sha)),
    listReviews: (number) => once(`reviews\0${number}`, () => host.listReviews(number)),
    listChangedFiles: (number) => once(`files\0${number}`, () => host.listChangedFiles(number)),
  };
}
