// The scheduler and the SDK-shaped API against the simulated host.
// Run: node --import ./test/register-fake-host.js --test test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from './harness.js';
import { RunEnded, reset, world } from './fake-host.js';

const q = (id, name, ...args) => ({ tag: 'query', val: { id, name, args: args.map((a) => JSON.stringify(a)) } });
const sig = (name, ...args) => ({ tag: 'signal', val: { name, args: args.map((a) => JSON.stringify(a)) } });
const upd = (id, name, runValidator, ...args) => ({ tag: 'update', val: { id, name, args: args.map((a) => JSON.stringify(a)), runValidator } });
const cancelRequested = { tag: 'cancel-requested' };

async function run(source, type, args = [], options = {}) {
  reset(options);
  const component = await build({ 'index.ts': source });
  return component.dynamic.run(type, args.map((a) => JSON.stringify(a)));
}

test('activities run in parallel with Promise.all and map their options', async () => {
  const result = await run(
    `import { proxyActivities } from 'caisson-workflow';
     const { greet } = proxyActivities<{ greet(n: string): Promise<string> }>({
       startToCloseTimeout: '1 minute', heartbeatTimeout: 2000, taskQueue: 'other',
       retry: { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes: ['Bad'] },
     });
     export async function hello(names: string[]): Promise<string[]> { return Promise.all(names.map((n) => greet(n))); }`,
    'hello',
    [['Ada', 'Grace']],
    { activities: { greet: (n) => `Hello, ${n}!` } }
  );
  assert.equal(result, JSON.stringify(['Hello, Ada!', 'Hello, Grace!']));
  const starts = world.commands.filter((c) => c.kind === 'activity');
  assert.equal(starts.length, 2);
  // Both were started before the first wait: parallel.
  assert.deepEqual(starts.map((c) => c.handle), [1, 2]);
  const o = starts[0].options;
  assert.equal(o.startToCloseTimeoutMs, 60_000n);
  assert.equal(o.heartbeatTimeoutMs, 2000n);
  assert.equal(o.taskQueue, 'other');
  assert.deepEqual(o.retryPolicy, { initialIntervalMs: 1000n, backoffCoefficient: 2, maximumIntervalMs: undefined, maximumAttempts: 3, nonRetryableErrorTypes: ['Bad'] });
  assert.equal(o.cancellationType, 'try-cancel');
});

test('an activity failure arrives as ActivityFailure with an ApplicationFailure cause; uncaught it fails the workflow', async () => {
  await assert.rejects(
    run(
      `import { proxyActivities, ActivityFailure, ApplicationFailure } from 'caisson-workflow';
       const { charge } = proxyActivities({ startToCloseTimeout: 1000, retry: { maximumAttempts: 2 } });
       export async function pay(): Promise<string> {
         try { await charge(); } catch (e) {
           if (!(e instanceof ActivityFailure) || !(e.cause instanceof ApplicationFailure) || e.cause.type !== 'CardDeclined') throw new Error('wrong shape');
           throw e;
         }
         return 'paid';
       }`,
      'pay',
      [],
      { activities: { charge: () => { throw { errorType: 'CardDeclined', message: 'declined' }; } } }
    ),
    (e) => {
      assert.deepEqual(e.payload, { message: 'Activity task failed: declined', errorType: 'CardDeclined', nonRetryable: false, details: undefined });
      return true;
    }
  );
  assert.equal(world.attempts.charge, 2);
});

test('sleep, condition with a timeout, signals and queries', async () => {
  const result = await run(
    `import * as wf from 'caisson-workflow';
     export const approve = wf.defineSignal<[string]>('approve');
     export const status = wf.defineQuery<string>('status');
     export async function approval(): Promise<string> {
       let approver: string | undefined;
       let state = 'waiting';
       wf.setHandler(approve, (who) => { approver = who; });
       wf.setHandler(status, () => state);
       await wf.sleep('1s');
       const first = await wf.condition(() => approver !== undefined, '10 seconds');
       state = 'still waiting';
       const second = await wf.condition(() => approver !== undefined, '1 hour');
       state = 'approved';
       return JSON.stringify({ first, second, approver });
     }`,
    'approval',
    [],
    {
      // wait 0: the sleep; wait 1: the 10 s timer fires (no signal yet);
      // wait 2: a query, wait 3: the signal.
      onWait: (n) => (n === 2 ? q('q1', 'status') : n === 3 ? sig('approve', 'carol') : undefined),
    }
  );
  assert.equal(JSON.parse(result), JSON.stringify({ first: false, second: true, approver: 'carol' }));
  assert.deepEqual(world.queryAnswers.get('q1'), { tag: 'ok', val: '"still waiting"' });
  // The 1 h timer of the condition that held was cancelled.
  const timers = world.commands.filter((c) => c.kind === 'timer');
  assert.deepEqual(timers.map((t) => t.options), [1000n, 10_000n, 3_600_000n]);
  assert.ok(world.commands.some((c) => c.kind === 'cancel' && c.handle === timers[2].handle));
});

test('updates: the validator rejects bad input, the handler runs an activity and returns', async () => {
  const result = await run(
    `import * as wf from 'caisson-workflow';
     const { audit } = wf.proxyActivities({ startToCloseTimeout: '5s' });
     const setAmount = wf.defineUpdate<number, [number]>('setAmount');
     export async function expense(): Promise<number> {
       let amount = 0;
       wf.setHandler(setAmount, async (value) => { await audit(value); amount = value; return amount; },
         { validator: (value) => { if (value <= 0) throw new Error('amount must be positive'); } });
       await wf.condition(() => amount > 0);
       return amount;
     }`,
    'expense',
    [],
    {
      activities: { audit: () => 'ok' },
      onWait: (n) => (n === 0 ? upd('u1', 'setAmount', true, -5) : n === 1 ? upd('u2', 'nope', true) : n === 2 ? upd('u3', 'setAmount', true, 42) : undefined),
    }
  );
  assert.equal(result, '42');
  assert.equal(world.updates.get('u1').rejected.message, 'amount must be positive');
  assert.match(world.updates.get('u2').rejected.message, /No registered handler for update: nope/);
  assert.deepEqual(world.updates.get('u3'), { accepted: true, completed: { tag: 'ok', val: '42' } });
});

test('cancellation: in-flight work is cancelled, a nonCancellable scope compensates across awaits, the run ends cancelled', async () => {
  await assert.rejects(
    run(
      `import { proxyActivities, CancellationScope, isCancellation, sleep } from 'caisson-workflow';
       const acts = proxyActivities({ startToCloseTimeout: '1m' });
       export async function saga(): Promise<void> {
         await acts.reserve();
         try {
           await sleep('1 day');
         } catch (e) {
           if (!isCancellation(e)) throw e;
           await CancellationScope.nonCancellable(async () => {
             await acts.release();
             await acts.notify();       // after an await: still in the non-cancellable scope
             await sleep(5);
           });
           throw e;
         }
       }`,
      'saga',
      [],
      { activities: { reserve: () => 'r', release: () => 'ok', notify: () => 'ok' }, onWait: (n) => (n === 1 ? cancelRequested : undefined) }
    ),
    (e) => e instanceof RunEnded && e.how === 'cancelled'
  );
  const kinds = world.commands.map((c) => c.kind);
  assert.deepEqual(kinds, ['activity', 'timer', 'cancel', 'activity', 'activity', 'timer']);
  assert.deepEqual(world.commands.filter((c) => c.kind === 'activity').map((c) => c.options.activityType), ['reserve', 'release', 'notify']);
});

test('CancellationScope.cancellable: cancelling the scope cancels its activity (ActivityFailure caused by CancelledFailure)', async () => {
  const result = await run(
    `import { proxyActivities, CancellationScope, ActivityFailure, CancelledFailure, sleep } from 'caisson-workflow';
     const { slow } = proxyActivities({ startToCloseTimeout: '1m' });
     export async function race(): Promise<string> {
       const scope = new CancellationScope();
       const p = scope.run(() => slow());
       await sleep(1);
       scope.cancel();
       try { await p; return 'finished'; } catch (e) {
         return e instanceof ActivityFailure && e.cause instanceof CancelledFailure ? 'cancelled' : 'other ' + e;
       }
     }`,
    'race',
    [],
    { activities: { slow: () => 'done' }, hold: new Set(['slow']) }
  );
  assert.equal(result, '"cancelled"');
  assert.ok(world.commands.some((c) => c.kind === 'cancel' && c.handle === 1));
});

test('withTimeout cancels the scope when the timeout passes', async () => {
  const result = await run(
    `import { CancellationScope, condition, isCancellation } from 'caisson-workflow';
     export async function timeout(): Promise<string> {
       try { await CancellationScope.withTimeout('2s', () => condition(() => false)); return 'held'; }
       catch (e) { return isCancellation(e) ? 'timed out' : 'other'; }
     }`,
    'timeout'
  );
  assert.equal(result, '"timed out"');
});

test('continueAsNew ends the run with the new arguments', async () => {
  await assert.rejects(
    run(
      `import { continueAsNew } from 'caisson-workflow';
       export async function loop(n: number): Promise<void> { await continueAsNew<typeof loop>(n + 1); }`,
      'loop',
      [1]
    ),
    (e) => e instanceof RunEnded && e.how === 'continue-as-new' && e.detail.args[0] === '2'
  );
});

test('an unexpected error fails the task: logged with its stack at error level, then a trap (no application error)', async () => {
  await assert.rejects(
    run(
      `export async function broken(): Promise<void> { const o: any = undefined; o.field.deeper = 1; }`,
      'broken'
    ),
    (e) => {
      // The bindings read `payload` to lower an `err`: it throws, so they trap.
      assert.throws(() => e.payload, /^Error: workflow task failed at:\n.*broken.*\nTypeError: [^\n]*$/s);
      return true;
    }
  );
  const line = world.logs.find((l) => l.level === 'error');
  // The error comes last: the host reports the last line as the failure's message.
  assert.match(line.message, /^workflow task failed at:\n  .*broken.*\nTypeError: [^\n]+$/s);
});

test('ApplicationFailure fails the workflow with its type and details', async () => {
  await assert.rejects(
    run(
      `import { ApplicationFailure } from 'caisson-workflow';
       export async function refuse(): Promise<void> { throw ApplicationFailure.nonRetryable('no stock', 'OutOfStock', { sku: 'A' }); }`,
      'refuse'
    ),
    (e) => {
      assert.deepEqual(e.payload, { message: 'no stock', errorType: 'OutOfStock', nonRetryable: true, details: '{"sku":"A"}' });
      return true;
    }
  );
});

test('Math.random and uuid4 come from the seeded generator: the same on a second run', async () => {
  const source = `import { uuid4 } from 'caisson-workflow';
     export async function rnd(): Promise<string> { return JSON.stringify([Math.random(), uuid4()]); }`;
  const a = await run(source, 'rnd');
  const b = await run(source, 'rnd');
  assert.equal(a, b);
  assert.match(JSON.parse(JSON.parse(a))[1], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test('children get their options; memo and search attributes are upserted and visible in workflowInfo', async () => {
  const result = await run(
    `import * as wf from 'caisson-workflow';
     export async function child(x: number): Promise<number> { return x; }
     export async function parent(): Promise<unknown> {
       const r = await wf.executeChild(child, { args: [3], workflowId: 'kid', memo: { owner: 'ada' },
         searchAttributes: { Stage: ['one'] } });
       wf.upsertMemo({ stage: 'done', gone: null });
       wf.upsertSearchAttributes([{ key: wf.defineSearchAttributeKey('Stage', wf.SearchAttributeType.KEYWORD), value: 'done' }]);
       const info = wf.workflowInfo();
       return { r, memo: info.memo, stage: info.typedSearchAttributes.get(wf.defineSearchAttributeKey('Stage', wf.SearchAttributeType.KEYWORD)) };
     }`,
    'parent',
    [],
    { children: { child: (x) => x * 2 } }
  );
  assert.deepEqual(JSON.parse(result), { r: 6, memo: { stage: 'done' }, stage: 'done' });
  const start = world.commands.find((c) => c.kind === 'child').options;
  assert.equal(start.workflowId, 'kid');
  assert.deepEqual(start.memo, [{ name: 'owner', value: '"ada"' }]);
  assert.deepEqual(start.searchAttributes, [{ name: 'Stage', value: { tag: 'keyword', val: 'one' } }]);
  assert.deepEqual(world.commands.find((c) => c.kind === 'upsert-memo').fields, [{ name: 'stage', value: '"done"' }, { name: 'gone', value: undefined }]);
});

test('declarations list every exported function; queries answer after the run', async () => {
  reset();
  const component = await build({
    'index.ts': `import * as wf from 'caisson-workflow';
      export const count = wf.defineQuery<number>('count');
      export const notAWorkflow = 3;
      export async function one(): Promise<void> { let n = 7; wf.setHandler(count, () => n); }
      export function two(): void {}`,
  });
  assert.deepEqual(component.declarations.declare().map((d) => d.name), ['one', 'two']);
  await component.dynamic.run('one', []);
  assert.equal(component.queries.handle('count', []), '7');
  assert.throws(() => component.queries.handle('missing', []), /did not register a handler for missing/);
});
