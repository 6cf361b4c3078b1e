import { describe, expect, it } from 'vitest';
import { canMove, finishMove, InvalidTransitionError, isFinal, runMoves, runStates, type RunMove, type RunState } from './run.js';

/** The columns of the table below, in its order. */
const moves = ['claim', 'succeed', 'fail', 'time_out', 'cancel', 'skip', 'requeue', 'abandon'] as const satisfies readonly RunMove[];

/** Where each move takes a run in each state; null: the move does not apply (the store changes nothing). */
const table: Record<RunState, (RunState | null)[]> = {
  //          claim      succeed      fail      time_out     cancel       skip         requeue   abandon
  queued:    ['running', null,        null,     null,        'cancelled', 'cancelled', null,     null],
  running:   [null,      'succeeded', 'failed', 'timed_out', 'cancelled', null,        'queued', 'failed'],
  succeeded: [null,      null,        null,     null,        null,        null,        null,     null],
  failed:    [null,      null,        null,     null,        null,        null,        null,     null],
  cancelled: [null,      null,        null,     null,        null,        null,        null,     null],
  timed_out: [null,      null,        null,     null,        null,        null,        null,     null],
};

const cases = runStates.flatMap((state) => moves.map((move, column) => [state, move, table[state][column] ?? null] as const));

describe('the run state machine', () => {
  it('has a column for every move and a row for every state', () => {
    expect([...moves].sort()).toStrictEqual(Object.keys(runMoves).sort());
    expect(Object.keys(table).sort()).toStrictEqual([...runStates].sort());
  });

  it.each(cases)('from %s, %s goes to %s', (state, move, to) => {
    expect(canMove(state, move)).toBe(to !== null);
    if (to !== null) expect(runMoves[move].to).toBe(to);
  });

  it.each(runStates)('%s is final exactly when no move leaves it', (state) => {
    expect(isFinal(state)).toBe(moves.every((move) => !canMove(state, move)));
  });

  it.each([
    ['succeeded', 'succeed'],
    ['failed', 'fail'],
    ['timed_out', 'time_out'],
    ['cancelled', 'cancel'],
  ] as const)('a task that ended %s is recorded by the move %s, from running', (state, move) => {
    expect(finishMove(state)).toBe(move);
    expect(canMove('running', move)).toBe(true);
    expect(runMoves[move].to).toBe(state);
  });

  it('names the state and the move when one is refused', () => {
    expect(new InvalidTransitionError('succeeded', 'time_out').message).toBe('a run cannot time out from succeeded');
  });
});
