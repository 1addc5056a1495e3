// The one place the library reaches the host: the caisson:workflow context
// (wit/workflow/context.wit). componentize-js links the WIT import by this
// specifier; the library's Node tests map it to a simulated host
// (test/fake-host.js).
import * as ctx from 'caisson:workflow/context@0.2.0';

export { ctx };
