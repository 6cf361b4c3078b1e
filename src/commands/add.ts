/** `task-mgmt add <path>`: the worker's own IPFS import, from the command line. */
import type { Config } from '../config.js';
import { addCommand } from '../cli/add.js';
import { EmbeddedIpfsStore } from '../adapters/ipfs/embedded-ipfs-store.js';

export async function add(config: Config, argv: string[]): Promise<number> {
  return addCommand(
    argv,
    { stdout: (text) => process.stdout.write(text), stderr: (text) => process.stderr.write(text) },
    {
      createStore: (request) =>
        new EmbeddedIpfsStore({
          dataDir: config.DATA_DIR,
          includeHidden: request.includeHidden,
          profile: { ...(config.IPFS_CID_PROFILE ? { profile: config.IPFS_CID_PROFILE } : {}), ...request.import },
        }),
    },
  );
}
