// Test workflows for caisson-workflow, one per feature, for
// host/tests/typescript_workflows.rs. Every exported function is a
// workflow type named as exported. The activities are Rust plugins:
// test-activities (echo, upper, step, fail-until), hostile-activities
// (wait-cancel) and greet-activity (greet).
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  SearchAttributeType,
  condition,
  continueAsNew,
  defineQuery,
  defineSearchAttributeKey,
  defineSignal,
  defineUpdate,
  executeChild,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  startChild,
  upsertMemo,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from 'caisson-workflow';

export { example } from './samples/hello-world';
export { unblockOrCancel } from './samples/signals-queries';

/** The Rust activities these workflows call, typed for the proxies. */
interface TestActivities {
  echo(value: string): Promise<string>;
  upper(value: string): Promise<string>;
  step(name: string, fail: boolean): Promise<string>;
  'fail-until'(succeedAt: number): Promise<number>;
  'wait-cancel'(cooperative: boolean): Promise<string>;
}

const acts = proxyActivities<TestActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '100ms', backoffCoefficient: 1, maximumAttempts: 5 },
});
const { echo, upper, step } = acts;

/** A Rust activity failing until attempt `succeedAt`: retried by Temporal. */
export async function retried(succeedAt: number): Promise<number> {
  return await acts['fail-until'](succeedAt);
}

/** Activities in parallel with Promise.all. */
export async function parallel(words: string[]): Promise<string[]> {
  return await Promise.all(words.map((w) => upper(w)));
}

/** A durable sleep, then a condition that times out, then one that holds. */
export async function timers(): Promise<{ timedOut: boolean; held: boolean }> {
  await sleep('1s');
  const timedOut = !(await condition(() => false, '1 second'));
  let ready = false;
  void sleep(10).then(() => (ready = true));
  const held = await condition(() => ready, '1 hour');
  return { timedOut, held };
}

export const approve = defineSignal<[string]>('approve');
export const status = defineQuery<{ state: string; amount: number; approver?: string; audit?: string }>('status');
export const setAmount = defineUpdate<number, [number]>('setAmount');
export const audit = defineUpdate<string, [string]>('audit');

/** Signals, queries (also after completion) and updates: `setAmount`'s
 * validator refuses amounts that are not positive; `audit` runs an
 * activity before it returns. Ends when approved. */
export async function approval(amount: number): Promise<string> {
  const state: { state: string; amount: number; approver?: string; audit?: string } = { state: 'pending', amount };
  setHandler(approve, (who) => {
    state.approver = who;
  });
  setHandler(status, () => state);
  setHandler(
    setAmount,
    (value) => {
      state.amount = value;
      return state.amount;
    },
    {
      validator: (value) => {
        if (!(value > 0)) throw new Error(`amount ${value} must be positive`);
      },
    }
  );
  setHandler(audit, async (note) => {
    state.audit = await upper(note);
    return state.audit;
  });
  await condition(() => state.approver !== undefined);
  state.state = 'approved';
  return `approved by ${state.approver} for ${state.amount}`;
}

/** A child workflow: returns the memo it was started with. */
export async function childWithMemo(word: string): Promise<{ word: string; memo: unknown; parent?: string }> {
  return { word: await upper(word), memo: workflowInfo().memo, parent: workflowInfo().parent?.workflowId };
}

/** executeChild with a memo and a chosen id; startChild's handle too. */
export async function parent(word: string): Promise<unknown> {
  const id = `${workflowInfo().workflowId}-child`;
  const first = await executeChild(childWithMemo, { args: [word], workflowId: id, memo: { from: 'parent', word } });
  const handle = await startChild(childWithMemo, { args: [`${word}2`], workflowId: `${id}-2` });
  return { first, second: await handle.result() };
}

const local = proxyLocalActivities<TestActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '100ms', backoffCoefficient: 1, maximumAttempts: 5 },
});

/** A local activity failing until attempt `succeedAt`. */
export async function localFlaky(succeedAt: number): Promise<number> {
  return await local['fail-until'](succeedAt);
}

const orderStatus = defineSearchAttributeKey('OrderStatus', SearchAttributeType.KEYWORD);

/** Upserts a search attribute (typed form) and the memo; reads both back. */
export async function searchAndMemo(value: string): Promise<unknown> {
  upsertSearchAttributes([{ key: orderStatus, value }]);
  upsertMemo({ note: { fragile: true }, stage: value });
  await sleep(10);
  const info = workflowInfo();
  return { status: info.typedSearchAttributes.get(orderStatus), legacy: info.searchAttributes.OrderStatus, memo: info.memo };
}

const longWait = proxyActivities<TestActivities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '10s',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

/** A saga: reserves, waits in a long activity; cancelled, it releases and
 * notifies in a non-cancellable scope (two activities, across awaits),
 * then lets the cancellation end the run CANCELED. */
export async function cancellableSaga(): Promise<string> {
  const reserved = await step('reserve', false);
  try {
    await longWait['wait-cancel'](true);
    return reserved;
  } catch (err) {
    if (!isCancellation(err)) throw err;
    const undone = await CancellationScope.nonCancellable(async () => {
      const released = await step('release', false);
      const notified = await echo('compensated');
      return [released, notified];
    });
    log.info('compensated after cancellation', { undone });
    throw err;
  }
}

/** Continues as new until `n` reaches `limit`. */
export async function countdown(n: number, limit: number): Promise<number> {
  if (n >= limit) return n;
  await sleep(1);
  return await continueAsNew<typeof countdown>(n + 1, limit);
}

/** Date.now(), Math.random() and uuid4() before a timer, recorded in
 * history through an activity's input and result, then compared after the
 * timer (with no sticky cache, every task replays from the start: the
 * values computed on replay must be the recorded ones). */
export async function randomness(): Promise<{ same: boolean; computed: string; recorded: string }> {
  const computed = JSON.stringify({ now: Date.now(), random: Math.random(), uuid: uuid4(), patched: patched('v2') });
  const recorded = await echo(computed);
  await sleep('1s');
  return { same: computed === recorded, computed, recorded };
}

/** What the JavaScript engine gives a workflow: `new Date()` and
 * `crypto.getRandomValues` are replay-safe like Date.now() and
 * Math.random(); the network is not there. Each attempt's error, by name. */
export async function escapes(): Promise<Record<string, string | number>> {
  const attempt = async (action: () => unknown): Promise<string> => {
    try {
      await action();
      return 'no error';
    } catch (e: any) {
      return `${e?.name ?? 'Error'}: ${e?.message ?? e}`;
    }
  };
  const bytes = new Uint8Array(8);
  (globalThis as any).crypto?.getRandomValues?.(bytes);
  const drawn = { date: new Date().getTime(), started: workflowInfo().startTime.getTime(), bytes: Array.from(bytes).join(',') };
  const recorded = JSON.parse(await echo(JSON.stringify(drawn)));
  return {
    ...recorded,
    fetch: await attempt(() => (globalThis as any).fetch('http://127.0.0.1:7233/')),
  };
}

/** An infinite loop: fuel ends the activation, the task fails naming the
 * plugin and the workflow, the worker goes on. */
export async function spin(): Promise<number> {
  let n = 0;
  for (;;) n++;
}

/** Eats memory a mebibyte at a time: the plugin's `memory_mb` stops it,
 * the task fails naming the limit, the worker goes on. */
export async function hog(): Promise<number> {
  const eaten: Uint8Array[] = [];
  for (;;) eaten.push(new Uint8Array(1 << 20).fill(1));
}

/** An unexpected error (a TypeError): the workflow task fails with its stack. */
export async function broken(): Promise<void> {
  await sleep(1);
  const missing: any = undefined;
  missing.field.deeper = 1;
}

/** ApplicationFailure fails the workflow with its type. */
export async function refuses(reason: string): Promise<void> {
  await sleep(1);
  throw ApplicationFailure.nonRetryable(`refused: ${reason}`, 'Refused', { reason });
}

/** A failing activity's error, uncaught, fails the workflow with the
 * activity's error type. */
export async function failingStep(): Promise<string> {
  return await step('charge', true);
}
