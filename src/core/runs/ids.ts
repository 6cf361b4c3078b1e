/** Run ids: short, URL-safe, and sortable by creation time (newest-first listings need no join). */
import { randomBytes } from 'node:crypto';

export type IdGenerator = () => string;

export const newRunId: IdGenerator = () => {
  const time = Date.now().toString(36).padStart(9, '0');
  const random = randomBytes(6).toString('hex');
  return `${time}-${random}`;
};
