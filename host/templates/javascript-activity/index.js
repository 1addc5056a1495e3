// The `{{name}}` activity, in JavaScript. Every function the world in
// wit/world.wit exports is an activity type (kebab-case there, camelCase
// here). It reaches only what caisson.toml grants.
import { log, info } from 'caisson:activity/context@{{activity_version}}';
import { greeting } from './greeting.js';

export function {{camel}}(name) {
  log('info', `greeting ${name} (attempt ${info().attempt})`);
  return greeting(name);
}
