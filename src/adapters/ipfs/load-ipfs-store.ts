/**
 * createIpfsStore for a command that adds once and exits (`task-mgmt add`): it loads only the
 * backend the configuration names. The Kubo client alone took half a second of CPU to load, a
 * cost every embedded add paid before hashing its first byte.
 */
import type { IpfsStoreSettings } from './create-ipfs-store.js';
import type { EmbeddedIpfsStore } from './embedded-ipfs-store.js';
import type { KuboIpfsStore } from './kubo-ipfs-store.js';

export async function loadIpfsStore(settings: IpfsStoreSettings): Promise<EmbeddedIpfsStore | KuboIpfsStore> {
  const common = {
    ...(settings.profile ? { profile: settings.profile } : {}),
    ...(settings.includeHidden !== undefined ? { includeHidden: settings.includeHidden } : {}),
  };
  if (settings.apiUrl) {
    const { KuboIpfsStore } = await import('./kubo-ipfs-store.js');
    return new KuboIpfsStore({ ...common, apiUrl: settings.apiUrl });
  }
  // The hashing threads load on other cores while this one loads the importer.
  (await import('./hash-pool.js')).startHashing();
  const { EmbeddedIpfsStore } = await import('./embedded-ipfs-store.js');
  return new EmbeddedIpfsStore({ ...common, dataDir: settings.dataDir });
}
