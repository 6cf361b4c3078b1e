/**
 * Which registries a build may pull from. The engine pulls with the host's network, so a
 * Dockerfile naming `127.0.0.1:<port>/x` (or a private address, or a name resolving to one) would
 * make it call a service on the host or its network, and the answer would land in the build log
 * that is shown on GitHub. Only public registries, and only the ALLOWED_REGISTRIES when set.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import ipaddr from 'ipaddr.js';
import type { ImageReference } from './image-reference.js';

export type ResolveHost = (hostname: string) => Promise<LookupAddress[]>;

export interface RegistryPolicyOptions {
  /** Registries images may be pulled from (host or host:port); empty or unset: any public one. */
  allowedRegistries?: readonly string[] | undefined;
  /** DNS resolution of a registry host; the system resolver by default. */
  resolveHost?: ResolveHost;
}

/** What the engine contacts for Docker Hub images. */
const HUB_PULL_HOST = 'registry-1.docker.io';

const resolveAll: ResolveHost = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) => (error ? reject(error) : resolve(addresses)));
  });

/** ipaddr.js range names, as words for a refusal. */
const rangeWords: Record<string, string> = {
  unspecified: 'an unspecified address',
  loopback: 'a loopback address',
  private: 'a private address',
  linkLocal: 'a link-local address',
  uniqueLocal: 'a unique-local address',
  carrierGradeNat: 'a shared (carrier-grade NAT) address',
  multicast: 'a multicast address',
  broadcast: 'a broadcast address',
  reserved: 'a reserved address',
};

/**
 * Why `address` is not a public unicast address (ipaddr.js `range()` names), or undefined when it
 * is one. IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
 */
export function nonPublicAddressReason(address: string): string | undefined {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(address.replace(/%.*$/, ''));
  } catch {
    return 'not an IP address';
  }
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  const range = parsed.range();
  if (range === 'unicast') return undefined;
  return rangeWords[range] ?? `a special-purpose address (${range})`;
}

export class RegistryPolicy {
  readonly #allowed: ReadonlySet<string>;
  readonly #resolveHost: ResolveHost;

  constructor(options: RegistryPolicyOptions = {}) {
    this.#allowed = new Set((options.allowedRegistries ?? []).map((entry) => entry.trim().toLowerCase()).filter(Boolean));
    this.#resolveHost = options.resolveHost ?? resolveAll;
  }

  /**
   * The rule an image breaks, in words, or undefined when it may be used. `present`: the image is
   * already on the engine, so the build uses it as it is and contacts no registry.
   */
  async refusal(image: ImageReference, present: boolean): Promise<string | undefined> {
    const { host, registry } = image;
    if (host === 'localhost' || host.endsWith('.localhost')) return `its registry ${registry} is this machine (localhost)`;
    if (ipaddr.isValid(host)) {
      const why = nonPublicAddressReason(host);
      return `its registry ${registry} is an IP address${why ? `, ${why}` : ''}; registries are named by host name`;
    }
    // Nothing is pulled for an image the engine already has (the build asks with pull=false).
    if (present) return undefined;
    if (this.#allowed.size > 0 && !this.#allowed.has(registry.toLowerCase()) && !this.#allowed.has(host)) {
      return `its registry ${registry} is not in ALLOWED_REGISTRIES (${[...this.#allowed].join(', ')})`;
    }
    const pullHost = registry === 'docker.io' ? HUB_PULL_HOST : host;
    let addresses: LookupAddress[];
    try {
      addresses = await this.#resolveHost(pullHost);
    } catch (error) {
      return `its registry host ${pullHost} could not be resolved (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
    }
    if (addresses.length === 0) return `its registry host ${pullHost} has no address`;
    for (const { address } of addresses) {
      const why = nonPublicAddressReason(address);
      if (why) return `its registry host ${pullHost} resolves to ${address}, ${why}`;
    }
    return undefined;
  }
}
