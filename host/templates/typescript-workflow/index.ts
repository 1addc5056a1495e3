// The `{{camel}}` workflow, in TypeScript on the `@temporalio/workflow` API:
// `caisson-workflow` (vendored in caisson-workflow/) has the same names, so
// a workflow written for the Temporal TypeScript SDK ports by changing its
// import line. Every exported function of this file is a workflow type,
// named as it is exported.
import { defineQuery, log, proxyActivities, setHandler, sleep } from 'caisson-workflow';
import { shout } from './shout.js';

/** The activities this workflow calls: `greet` is another plugin
 * (`caisson new activity rust greet`); only its type is known here. */
interface Activities {
  greet(name: string): Promise<string>;
}

const { greet } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 3 },
});

/** Where the workflow is: `temporal workflow query --name stage`. */
export const stage = defineQuery<string>('stage');

export async function {{camel}}(request: { name: string }): Promise<string> {
  let current = 'sleeping';
  setHandler(stage, () => current);
  log.info(`{{camel}} started for ${request.name}`);
  await sleep('1 second'); // a durable timer: survives worker restarts
  current = 'greeting';
  const greeting = await greet(request.name);
  current = 'done';
  return shout(greeting);
}
