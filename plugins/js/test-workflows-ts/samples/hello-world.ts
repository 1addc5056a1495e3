// In the shape of temporalio/samples-typescript `hello-world`
// (src/workflows.ts): one activity through proxyActivities with a
// start-to-close timeout. Written for `@temporalio/workflow`; only the
// import line differs. Its activity `greet` is the Rust greet-activity.
import { proxyActivities } from 'caisson-workflow';
// The samples import only the activities' types; no activity code runs in the workflow.
import type * as activities from './activities';

const { greet } = proxyActivities<typeof activities>({
  startToCloseTimeout: '1 minute',
});

/** Greets `name` through the `greet` activity. */
export async function example(name: string): Promise<string> {
  return await greet(name);
}
