import { describe, expect, it } from 'vitest';
import type { AnyTaskType } from '../../ports/task-type.js';
import { FetchGuard } from '../../../tasks/shared/safe-fetch.js';
import { taskNetwork } from './index.js';

const type = (name: string, network: boolean): AnyTaskType => ({ name, description: '', params: {} as AnyTaskType['params'], network, run: async () => ({}) });
const settings = { allowPrivateAddresses: false, gatewayUrl: 'https://ipfs.io' };

describe('taskNetwork', () => {
  it('gives a type declared network: true the guarded fetch', () => {
    expect(taskNetwork(type('web/warc', true), settings).fetch).toBeInstanceOf(FetchGuard);
  });

  it('gives a type declared network: false a fetch that refuses, saying why', async () => {
    const { fetch } = taskNetwork(type('files/identify', false), settings);
    await expect(fetch.get('https://example.org/')).rejects.toThrow('refused: files/identify is declared network: false, so it may not fetch https://example.org/');
  });

  it('gives a mailer only when SMTP_URL is set, and reports an unusable SMTP_URL only when it is used', () => {
    expect(taskNetwork(type('notify/email', false), settings).mail).toBeUndefined();
    const { mail } = taskNetwork(type('notify/email', false), { ...settings, smtpUrl: 'smtp://user:hunter2@mail.example:587' });
    expect(mail?.server()).toBe('smtp://user:***@mail.example:587');
    expect(mail?.redact('login hunter2 refused')).toBe('login *** refused');
    const broken = taskNetwork(type('notify/email', false), { ...settings, smtpUrl: 'http://mail.example' }).mail;
    expect(() => broken?.server()).toThrow('SMTP_URL must be smtp://host[:port] or smtps://host[:port]');
  });
});
