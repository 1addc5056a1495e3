// The Temporal TypeScript SDK's side of benches/guest_replay.py. The SDK is
// not a dependency of this repository: guest_replay.py installs it with npm
// into a scratch folder (TS_SDK_DIR, default ~/.cache/caisson/bench-ts) and
// runs this script with that folder in the environment.
//
//   node ts_sdk.mjs bundle WORKFLOW.ts BUNDLE.js
//       webpack the workflow (as Worker.create would) into BUNDLE.js
//   node ts_sdk.mjs replay BUNDLE.js HISTORY.json COPIES
//       replay COPIES copies of the history (each with a run id of its own)
//       through Worker.runReplayHistories; prints one JSON line
//       {"seconds", "replayed", "failures"} (the time from the call to the
//       last result; reading and converting the history is outside it)
//   node ts_sdk.mjs worker BUNDLE.js ADDRESS TASK_QUEUE MAX_CACHED
//       a worker serving the bundle's workflows and an `echo` activity;
//       prints "ready" once it polls, stops on SIGTERM
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';

const sdkDir = process.env.TS_SDK_DIR || join(homedir(), '.cache/caisson/bench-ts');
const require = createRequire(join(sdkDir, 'package.json'));
const { Worker, NativeConnection, Runtime, bundleWorkflowCode, DefaultLogger } = require('@temporalio/worker');
const { historyFromJSON } = require('@temporalio/common/lib/proto-utils');

// Warnings only: the SDK logs every replayed workflow at info level.
Runtime.install({ logger: new DefaultLogger('WARN') });

async function bundle(workflowsPath, out) {
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') });
  writeFileSync(out, code);
}

/** COPIES copies of the recorded history, each with a run id of its own
 * (core's replay worker tells histories apart by run id). */
function copies(json, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const copy = structuredClone(json);
    copy.events[0].workflowExecutionStartedEventAttributes.originalExecutionRunId += `-replay-${i}`;
    out.push({ workflowId: `replay-${i}`, history: historyFromJSON(copy) });
  }
  return out;
}

async function replay(bundlePath, historyPath, n) {
  const workflowBundle = { code: readFileSync(bundlePath, 'utf8') };
  const histories = copies(JSON.parse(readFileSync(historyPath, 'utf8')), n);
  const started = process.hrtime.bigint();
  let replayed = 0;
  const failures = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle }, histories)) {
    replayed += 1;
    if (result.error) failures.push(`${result.runId}: ${result.error.message ?? result.error}`);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(JSON.stringify({ seconds, replayed, failures: failures.slice(0, 3), failed: failures.length }));
}

async function serve(bundlePath, address, taskQueue, maxCached) {
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowBundle: { code: readFileSync(bundlePath, 'utf8') },
    activities: { echo: async (value) => value },
    maxCachedWorkflows: Number(maxCached),
  });
  process.on('SIGTERM', () => worker.shutdown());
  const running = worker.run();
  console.log('ready');
  await running;
  await connection.close();
}

const [mode, ...args] = process.argv.slice(2);
const modes = { bundle, replay: (b, h, n) => replay(b, h, Number(n)), worker: serve };
if (!modes[mode]) {
  console.error(`usage: node ts_sdk.mjs bundle|replay|worker ...; got ${mode}`);
  process.exit(2);
}
await modes[mode](...args);
