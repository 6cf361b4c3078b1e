/**
 * Image references as the Docker engine reads them, so that the registry a pull would contact is
 * known before the engine is asked to build. Follows distribution/reference (`normalize.go`,
 * `regexp.go`): the first path component names a registry only when it holds a `.` or a `:`, is
 * `localhost`, or has an upper-case letter; otherwise the image is on Docker Hub, and a one-part
 * Hub name lives under `library/`.
 */

export interface ImageReference {
  /** Registry as the engine contacts it: `docker.io`, `ghcr.io`, `host:5000`, `[::1]:5000`. */
  registry: string;
  /** Host of the registry without port or brackets, lower-cased: `docker.io`, `::1`. */
  host: string;
  /** Repository path inside the registry: `library/ubuntu`. */
  repository: string;
  tag?: string;
  digest?: string;
  /** The full name: `docker.io/library/ubuntu:latest`, or `…@sha256:…` with a digest. */
  canonical: string;
}

export class InvalidImageReferenceError extends Error {
  override readonly name = 'InvalidImageReferenceError';
}

const DOCKER_HUB = 'docker.io';
/** Other names of Docker Hub that the engine rewrites to docker.io. */
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

const pathComponent = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const hostName = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*$/;
const ipv6Host = /^\[[0-9A-Fa-f:.]+(?:%[0-9A-Za-z._~-]+)?\]$/;
const tagPattern = /^[\w][\w.-]{0,127}$/;
const digestPattern = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;

/**
 * Parses and normalises a reference (`ubuntu` → `docker.io/library/ubuntu:latest`); throws
 * InvalidImageReferenceError for anything the engine would not accept either.
 */
export function normaliseImageReference(text: string): ImageReference {
  const fail = (why: string): never => {
    throw new InvalidImageReferenceError(`${JSON.stringify(text)} is not a valid image reference: ${why}`);
  };
  if (text === '' || text.length > 1024) fail(text === '' ? 'it is empty' : 'it is too long');
  if (/\s/.test(text)) fail('it contains white space');

  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestPattern.test(digest)) fail(`bad digest "${digest}"`);
  }

  // The registry: everything before the first slash, when it looks like a host.
  let registry = DOCKER_HUB;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }

  // A tag is a colon after the last slash (a colon before it would be a port).
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) fail(`bad tag "${tag}"`);
  }

  const { host, port } = splitRegistry(registry, fail);
  const lowerHost = host.toLowerCase();
  if (HUB_ALIASES.has(lowerHost) && port === undefined) registry = DOCKER_HUB;
  if (rest === '') fail('the repository name is empty');
  const components = rest.split('/');
  for (const component of components) {
    if (!pathComponent.test(component)) fail(`bad repository name component "${component}"`);
  }
  const repository = registry === DOCKER_HUB && components.length === 1 ? `library/${rest}` : rest;
  if (`${registry}/${repository}`.length > 255) fail('the name is longer than 255 characters');

  // Without tag or digest the engine pulls :latest.
  const effectiveTag = tag ?? (digest ? undefined : 'latest');
  const canonical = `${registry}/${repository}${effectiveTag ? `:${effectiveTag}` : ''}${digest ? `@${digest}` : ''}`;
  return {
    registry,
    host: lowerHost.replace(/^\[|\]$/g, ''),
    repository,
    ...(effectiveTag ? { tag: effectiveTag } : {}),
    ...(digest ? { digest } : {}),
    canonical,
  };
}

function splitRegistry(registry: string, fail: (why: string) => never): { host: string; port: string | undefined } {
  const portMatch = /:(\d+)$/.exec(registry);
  const host = portMatch ? registry.slice(0, portMatch.index) : registry;
  const port = portMatch?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) fail(`bad port ${port}`);
  if (!hostName.test(host) && !ipv6Host.test(host)) fail(`bad registry host "${host}"`);
  return { host, port };
}
