/**
 * The built-in task types. A new type is one folder under `tasks/` and one line here.
 */
import type { AnyTaskType } from '../src/ports/task-type.js';
import { container } from './container/index.js';
import { procfile } from './procfile/index.js';
import { kiwixZim } from './kiwix/zim/index.js';
import { filesIdentify } from './files/identify/index.js';
import { notifyEmail } from './notify/email/index.js';
import { addUrl } from './ipfs/add-url/index.js';
import { webWarc } from './web/warc/index.js';

const types: AnyTaskType[] = [container, procfile, addUrl, kiwixZim, webWarc, filesIdentify, notifyEmail];

export const builtInTaskTypes: ReadonlyMap<string, AnyTaskType> = new Map(types.map((type) => [type.name, type]));
