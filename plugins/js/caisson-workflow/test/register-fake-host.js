// `node --import ./test/register-fake-host.js`: resolves the WIT import
// `caisson:workflow/context@0.2.0` to the simulated host (fake-host.js).
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
      const fake = ${JSON.stringify(new URL('./fake-host.js', import.meta.url).href)};
      export async function resolve(specifier, context, next) {
        if (specifier === 'caisson:workflow/context@0.2.0') return { url: fake, shortCircuit: true };
        return next(specifier, context);
      }
    `)
);
