// A JavaScript activity: every exported function is an activity type.
import { log, info } from 'caisson:activity/context@0.1.0';

export function greetJs(name) {
  const { attempt } = info();
  log('info', `greeting ${name} from JavaScript (attempt ${attempt})`);
  return `Hello from JavaScript, ${name}!`;
}
