import { describe, expect, it } from 'vitest';
import { parseComment } from './parse-comment.js';

describe('parseComment', () => {
  it.each([
    ['/run', { kind: 'run', task: null, params: {} }],
    ['  /RUN  ', { kind: 'run', task: null, params: {} }],
    ['/run fetch', { kind: 'run', task: 'fetch', params: {} }],
    ['/run process lang=en', { kind: 'run', task: 'process', params: { lang: 'en' } }],
    ['/run lang=en', { kind: 'run', task: null, params: { lang: 'en' } }],
    ['/run x msg="hello world" n=', { kind: 'run', task: 'x', params: { msg: 'hello world', n: '' } }],
    ['/run x Lang=en', { kind: 'run', task: 'x', params: { lang: 'en' } }],
    ['/run\nplease, and thanks', { kind: 'run', task: null, params: {} }],
    ['\uFEFF/run', { kind: 'run', task: null, params: {} }],
    ['/cancel', { kind: 'cancel', runId: null }],
    ['/cancel 01hx-abc', { kind: 'cancel', runId: '01hx-abc' }],
    ['/retry', { kind: 'retry' }],
    ['/pin 01hx-abc 90d', { kind: 'pin', runId: '01hx-abc', durationMs: 90 * 86_400_000 }],
    ['/PIN 01hx-abc 36h', { kind: 'pin', runId: '01hx-abc', durationMs: 36 * 3_600_000 }],
    ['/help', { kind: 'help' }],
    ['/Help me', { kind: 'help' }],
  ])('%j is a command', (body, command) => {
    expect(parseComment(body)).toEqual({ type: 'command', command });
  });

  it.each([
    ['LGTM', 'not a command'],
    ['', 'not a command'],
    ['Please /run this', 'not a command'],
    ['> /run', 'quoted line'],
    ['```\n/run\n```', 'code block'],
    ['~~~\n/run', 'code block'],
    ['first line\n/run', 'not a command'],
    ['/usr/bin/env is missing', 'not a known command'],
    ['/deploy', 'not a known command'],
  ])('%j is ignored (%s)', (body, reason) => {
    expect(parseComment(body)).toEqual({ type: 'ignore', reason });
  });

  it.each([
    ['/rn', /Did you mean `\/run`/],
    ['/rnu', /Did you mean `\/run`/],
    ['/hlep', /Did you mean `\/help`/],
    ['/cancle', /Did you mean `\/cancel`/],
    ['/retyr', /Did you mean `\/retry`/],
    ['/run a b', /`b` is not `key=value`/],
    ['/run x lang=en lang=fr', /given twice/],
    ['/run $(id)', /not a task name/],
    ['/run x 1x=2', /not a parameter name/],
    ['/run x msg="open', /quote is not closed/],
    ['/retry now', /takes no arguments/],
    ['/cancel a b', /at most one run id/],
    ['/pin', /takes a run id and a duration/],
    ['/pin 01hx-abc', /takes a run id and a duration/],
    ['/pin 01hx-abc 9d now', /takes a run id and a duration/],
    ['/pin $(id) 9d', /not a run id/],
    ['/pin 01hx-abc forever', /`forever` is not a duration/],
    ['/pin 01hx-abc 0d', /`0d` is not a duration/],
    ['/pni', /Did you mean `\/pin`/],
  ])('%j gets a reply', (body, message) => {
    const parsed = parseComment(body);
    expect(parsed.type).toBe('reply');
    expect(parsed.type === 'reply' && parsed.message).toMatch(message);
  });
});
