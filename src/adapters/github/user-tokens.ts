/** GitHub user tokens, as the JSON API accepts them. */
import { createHash } from 'node:crypto';

/**
 * Resolves a GitHub user token to its login with `GET /user`, remembering answers for a minute
 * so a client polling the API does not spend the user's rate limit. The token is only ever sent
 * to GitHub, and never logged.
 */
export function githubUserResolver(apiUrl: string, fetchImpl: typeof fetch = fetch): (token: string) => Promise<string | null> {
  const cache = new Map<string, { login: string | null; until: number }>();
  return async (token) => {
    const key = createHash('sha256').update(token).digest('hex');
    const known = cache.get(key);
    if (known && known.until > Date.now()) return known.login;
    const response = await fetchImpl(`${apiUrl}/user`, { headers: { authorization: `token ${token}`, accept: 'application/vnd.github+json' } });
    let login: string | null = null;
    if (response.ok) {
      const body = (await response.json()) as { login?: unknown; type?: unknown };
      login = typeof body.login === 'string' && body.type !== 'Bot' ? body.login : null;
    } else if (response.status !== 401 && response.status !== 403) {
      throw new Error(`GitHub answered ${response.status} when asked whose token this is`);
    }
    if (cache.size > 10_000) cache.clear();
    cache.set(key, { login, until: Date.now() + 60_000 });
    return login;
  };
}
