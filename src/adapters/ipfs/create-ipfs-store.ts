/**
 * Picks the IPFS backend the configuration names: Kubo when IPFS_API_URL is set, the embedded
 * store in DATA_DIR otherwise. Both compute CIDs with the same importer (import-tree.ts), so the
 * choice changes where blocks go, never a CID.
 */
import { EmbeddedIpfsStore } from './embedded-ipfs-store.js';
import type { ImportOptionsInput } from './import-profile.js';
import { KuboIpfsStore } from './kubo-ipfs-store.js';

export interface IpfsStoreSettings {
  /** DATA_DIR: where the embedded store keeps its blocks. */
  dataDir: string;
  /** IPFS_API_URL: Kubo's RPC API; unset selects the embedded store. */
  apiUrl?: string | undefined;
  /** IPFS_CID_PROFILE and any `ipfs add`-style overrides. */
  profile?: ImportOptionsInput;
  /** Include dot-files inside added folders (`task-mgmt add --hidden`). */
  includeHidden?: boolean;
}

export function createIpfsStore(settings: IpfsStoreSettings): EmbeddedIpfsStore | KuboIpfsStore {
  const common = {
    ...(settings.profile ? { profile: settings.profile } : {}),
    ...(settings.includeHidden !== undefined ? { includeHidden: settings.includeHidden } : {}),
  };
  return settings.apiUrl ? new KuboIpfsStore({ ...common, apiUrl: settings.apiUrl }) : new EmbeddedIpfsStore({ ...common, dataDir: settings.dataDir });
}
