/**
 * Registering the GitHub App from `app.yml` (GitHub's manifest flow), served by `task-mgmt serve`
 * while APP_ID is unset. https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest
 *
 * Probot 14 has a setup flow of its own, and this replaces it for two reasons. Its page puts the
 * manifest in a single-quoted HTML attribute without escaping it (lib/views/setup.js), so an
 * apostrophe in a description breaks the JSON GitHub receives. And it registers the webhook URL
 * as WEBHOOK_PROXY_URL or the page's base URL with the path `/`, where this app serves no
 * webhooks. Here every value on the page is HTML-escaped, and the webhook URL is WEBHOOK_PROXY_URL
 * when set, else PUBLIC_URL (or the URL the page was opened at) + WEBHOOK_PATH.
 *
 * The paths are Probot's (`/probot`, `/probot/setup`), so its documentation still applies.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

export interface RegistrationOptions {
  /** The App's manifest (app.yml) as text. */
  manifestYaml: string;
  /** Where GitHub sends webhooks, on this app. */
  webhookPath: string;
  /** The app's public URL (PUBLIC_URL); else the URL the page was opened at. */
  publicUrl?: string | undefined;
  /** A webhook relay (WEBHOOK_PROXY_URL): registered as it is when set. */
  webhookProxyUrl?: string | undefined;
  /** GitHub's web address, where the App is created: https://github.com, or a GitHub Enterprise host. */
  githubWebUrl: string;
  /** GitHub's REST API, where the code GitHub hands back is turned into the App's credentials. */
  githubApiUrl: string;
  /** Register the App under this organization (GH_ORG) rather than the signed-in user. */
  org?: string | undefined;
  /** The file the App's credentials are written to (`.env`, which the app reads at start-up). */
  envFile: string;
  log: Logger;
  fetch?: typeof fetch;
}

/** The fields of GitHub's answer to `POST /app-manifests/{code}/conversions` that are kept. */
const conversionSchema = z.object({
  id: z.number().int().positive(),
  slug: z.string().optional(),
  html_url: z.string().url(),
  pem: z.string().min(1),
  webhook_secret: z.string().nullable().optional(),
  client_id: z.string().optional(),
  client_secret: z.string().optional(),
});

/** app.yml, found beside package.json above this module (src/cli in development, dist/src/cli once built). */
export function readAppManifest(from: string = import.meta.dirname): string {
  let dir = from;
  for (;;) {
    try {
      return readFileSync(join(dir, 'app.yml'), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('app.yml, the GitHub App manifest, is missing from the installation');
    dir = parent;
  }
}

/** The request handler of the registration pages; false for any other path. */
export function registrationHandler(options: RegistrationOptions): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const appYml = parseAppYml(options.manifestYaml);
  // GitHub hands `state` back with the code: a page elsewhere cannot make this app swallow a code
  // (and credentials) of someone else's App.
  const state = randomBytes(16).toString('hex');
  const doFetch = options.fetch ?? fetch;

  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    if (url.pathname === '/') {
      res.writeHead(302, { location: '/probot' }).end();
      return true;
    }
    if (url.pathname === '/probot') {
      const base = options.publicUrl ?? requestBaseUrl(req);
      const manifest = appManifest(appYml, { webhookUrl: webhookUrl(options, base), redirectUrl: `${requestBaseUrl(req)}/probot/setup`, callbackUrl: `${base.replace(/\/+$/, '')}/login/callback` });
      const createUrl = `${options.githubWebUrl}${options.org ? `/organizations/${encodeURIComponent(options.org)}` : ''}/settings/apps/new?state=${state}`;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(registrationPage(manifest, createUrl));
      return true;
    }
    if (url.pathname === '/probot/setup') {
      const code = url.searchParams.get('code') ?? '';
      const given = Buffer.from(url.searchParams.get('state') ?? '');
      if (given.length !== state.length || !timingSafeEqual(given, Buffer.from(state))) {
        res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('This registration was not started from this page: open /probot and register again.\n');
        return true;
      }
      if (!/^[\w-]{1,200}$/.test(code)) {
        res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('GitHub sent no code (or not one that looks like a code): register again from /probot.\n');
        return true;
      }
      try {
        const app = await convert(doFetch, options.githubApiUrl, code);
        await saveCredentials(options.envFile, app);
        options.log.info({ appId: app.id, slug: app.slug, envFile: options.envFile }, 'the GitHub App is registered and its credentials saved: install it, then restart task-mgmt');
        res.writeHead(302, { location: `${app.html_url}/installations/new` }).end();
      } catch (error) {
        options.log.error({ err: error }, 'could not turn the code GitHub sent into the App credentials');
        res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' }).end(`GitHub did not hand over the App's credentials: ${(error as Error).message}\n`);
      }
      return true;
    }
    return false;
  };
}

type AppYml = Record<string, unknown>;

function parseAppYml(text: string): AppYml {
  const parsed: unknown = parseYaml(text);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('app.yml must be a mapping of GitHub App manifest fields');
  return parsed as AppYml;
}

/** WEBHOOK_PROXY_URL when set, else the app's base URL + WEBHOOK_PATH. */
export function webhookUrl(options: Pick<RegistrationOptions, 'webhookProxyUrl' | 'webhookPath'>, baseUrl: string): string {
  return options.webhookProxyUrl ?? `${baseUrl.replace(/\/+$/, '')}${options.webhookPath}`;
}

/**
 * app.yml with the URLs only this app knows; the webhook URL always its own, whatever app.yml says.
 * The OAuth callback is the dashboard's sign-in return (`/login/callback`).
 */
export function appManifest(appYml: AppYml, urls: { webhookUrl: string; redirectUrl: string; callbackUrl?: string }): string {
  const hook = typeof appYml.hook_attributes === 'object' && appYml.hook_attributes !== null ? appYml.hook_attributes : {};
  return JSON.stringify({
    ...appYml,
    hook_attributes: { ...hook, url: urls.webhookUrl },
    redirect_url: urls.redirectUrl,
    ...(urls.callbackUrl ? { callback_urls: [urls.callbackUrl] } : {}),
  });
}

/** Safe in element text and in attribute values, single- or double-quoted. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function registrationPage(manifestJson: string, createUrl: string): string {
  const manifest = JSON.parse(manifestJson) as { name?: string; description?: string; hook_attributes: { url: string }; default_events?: string[]; default_permissions?: Record<string, string> };
  const hook = manifest.hook_attributes.url;
  const unreachable = /^https?:\/\/(localhost|127\.|\[::1\])/.test(hook);
  const permissions = Object.entries(manifest.default_permissions ?? {}).map(([name, level]) => `${name}: ${level}`);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Register ${escapeHtml(manifest.name ?? 'the GitHub App')}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem}code{overflow-wrap:anywhere}button{font-size:1rem;padding:.5rem 1rem}</style>
</head>
<body>
<h1>Register ${escapeHtml(manifest.name ?? 'the GitHub App')}</h1>
<p>${escapeHtml(manifest.description ?? '')}</p>
<p>GitHub creates the App from <code>app.yml</code> (you can change its name there), then sends you back here, and
task-mgmt saves the App's id, key and webhook secret to <code>.env</code>. Install the App, and restart task-mgmt.</p>
<ul>
<li>Webhook URL: <code>${escapeHtml(hook)}</code></li>
<li>Events: ${escapeHtml((manifest.default_events ?? []).join(', '))}</li>
<li>Permissions: ${escapeHtml(permissions.join(', '))}</li>
</ul>
${unreachable ? `<p><strong>GitHub cannot reach this webhook URL.</strong> Set <code>PUBLIC_URL</code> to the address GitHub reaches this app at (or <code>WEBHOOK_PROXY_URL</code> to a relay) and restart, or change the URL in the App's settings later.</p>\n` : ''}<form action="${escapeHtml(createUrl)}" method="post">
<input type="hidden" name="manifest" value="${escapeHtml(manifestJson)}">
<button type="submit">Register GitHub App</button>
</form>
<p>Registered an App already? Set <code>APP_ID</code>, <code>PRIVATE_KEY_PATH</code> (or <code>PRIVATE_KEY</code>) and <code>WEBHOOK_SECRET</code>, and restart.</p>
</body>
</html>
`;
}

/** The URL the browser used to reach this page (a proxy in front may say so in X-Forwarded-*). */
function requestBaseUrl(req: IncomingMessage): string {
  const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value)?.split(',')[0]?.trim();
  const proto = first(req.headers['x-forwarded-proto']) ?? ((req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http');
  const host = first(req.headers['x-forwarded-host']) ?? req.headers.host ?? 'localhost';
  return `${proto === 'https' ? 'https' : 'http'}://${host}`;
}

async function convert(doFetch: typeof fetch, apiUrl: string, code: string): Promise<z.infer<typeof conversionSchema>> {
  const response = await doFetch(`${apiUrl}/app-manifests/${encodeURIComponent(code)}/conversions`, {
    method: 'POST',
    headers: { accept: 'application/vnd.github+json', 'user-agent': 'task-mgmt' },
    signal: AbortSignal.timeout(30_000),
  });
  if (response.status !== 201) throw new Error(`GitHub answered ${response.status} ${response.statusText}`);
  const parsed = conversionSchema.safeParse(await response.json());
  if (!parsed.success) throw new Error(`GitHub's answer lacks ${parsed.error.issues.map((issue) => issue.path.join('.')).join(', ')}`);
  return parsed.data;
}

/**
 * Writes the App's credentials into the env file, keeping its other lines; readable by its owner
 * only, since it holds the App's private key.
 */
async function saveCredentials(envFile: string, app: z.infer<typeof conversionSchema>): Promise<void> {
  const values: Record<string, string> = {
    APP_ID: String(app.id),
    PRIVATE_KEY: `"${app.pem.trim().replace(/\r?\n/g, '\\n')}"`,
    ...(app.webhook_secret ? { WEBHOOK_SECRET: app.webhook_secret } : {}),
    ...(app.client_id ? { GITHUB_CLIENT_ID: app.client_id } : {}),
    ...(app.client_secret ? { GITHUB_CLIENT_SECRET: app.client_secret } : {}),
  };
  const existing = await readFile(envFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return '';
    throw error;
  });
  const kept = existing.split('\n').filter((line) => line.trim() !== '' && !Object.keys(values).includes(line.split('=')[0]!.trim()));
  const lines = [...kept, ...Object.entries(values).map(([key, value]) => `${key}=${value}`)];
  await writeFile(envFile, `${lines.join('\n')}\n`, { mode: 0o600 });
  await chmod(envFile, 0o600);
}
