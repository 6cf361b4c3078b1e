import type { Config } from '../config.js';
export async function add(_config: Config, _argv: string[]): Promise<number> {
  return 1;
}
