// The TypeScript workflows of benches/guest_replay.py, written for
// Caisson; on the Temporal TypeScript SDK only the module name of the
// import differs ('@temporalio/workflow' for 'caisson-workflow').
//
// * replayBench(rounds): per round an `echo` activity and a 1 ms timer;
//   after the middle round it waits (with a one-hour deadline, a durable
//   timer) for an `approve` signal. 10 rounds make about 120 events.
// * waitBench(): waits for `approve` (one-hour deadline), for the memory
//   and instance-start figures: it stays in the worker's cache.
//
// Both answer the query `get-status` with { state }.
import { condition, defineQuery, defineSignal, proxyActivities, setHandler, sleep } from 'caisson-workflow';

interface Activities {
  echo(value: string): Promise<string>;
}

const { echo } = proxyActivities<Activities>({ startToCloseTimeout: '30 seconds' });

export const approve = defineSignal<[string]>('approve');
export const getStatus = defineQuery<{ state: string }>('get-status');

export async function replayBench(rounds: number): Promise<{ echoed: number; approver?: string }> {
  let state = 'running';
  let approver: string | undefined;
  setHandler(approve, (who) => void (approver = who));
  setHandler(getStatus, () => ({ state }));
  let echoed = 0;
  for (let i = 0; i < rounds; i++) {
    await echo(`round-${i}`);
    echoed += 1;
    await sleep(1);
    if (i === Math.floor(rounds / 2)) {
      state = 'waiting';
      await condition(() => approver !== undefined, '1 hour');
      state = 'running';
    }
  }
  state = 'done';
  return { echoed, approver };
}

export async function waitBench(): Promise<string> {
  let approver: string | undefined;
  setHandler(approve, (who) => void (approver = who));
  setHandler(getStatus, () => ({ state: approver === undefined ? 'pending' : 'approved' }));
  await condition(() => approver !== undefined, '1 hour');
  return approver ?? '';
}
