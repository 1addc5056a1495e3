// The `{{name}}` workflow, in JavaScript. Every function the world in
// wit/world.wit exports is a workflow type (kebab-case there, camelCase
// here). `caisson-guest` is the vendored helper package (caisson-guest/).
import { activity, sleep, log } from 'caisson-guest';
import { shout } from './shout.js';

export function {{camel}}(request) {
  log(`{{name}} started for ${request.name}`);
  sleep(1000); // a durable timer: survives worker restarts
  const greeting = activity('greet', request.name).startToClose(10_000).call();
  return shout(greeting);
}
