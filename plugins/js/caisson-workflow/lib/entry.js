// The component's exports for a module of workflow functions: the
// `declarations`, `dynamic` and `queries` interfaces of the world
// caisson:workflow/dynamic-workflows. `caisson build` generates the entry
// that calls `workflowExports` with the plugin's module, so every exported
// function of that module is a workflow type, named as it is exported.

import { handleQuery, runWorkflow, state, trap } from './activator.js';
import { CancellationScope } from './scope.js';
import { sleep } from './workflow.js';

/** The exported functions of `module` (a namespace object): name -> function. */
export function workflowFunctions(module) {
  const found = new Map();
  for (const [name, value] of Object.entries(module)) {
    if (typeof value === 'function' && name !== 'default') found.set(name, value);
  }
  return found;
}

export function workflowExports(module) {
  const workflows = workflowFunctions(module);
  return {
    declarations: {
      declare() {
        return [...workflows.keys()].map((name) => ({ name, handlers: [], description: undefined }));
      },
    },
    dynamic: {
      run(workflowType, args) {
        const fn = workflows.get(workflowType);
        if (!fn) {
          // The host only runs declared types; say what is there if not.
          return trap(`no workflow function \`${workflowType}\` is exported (exported: ${[...workflows.keys()].join(', ')})`);
        }
        return runWorkflow(fn, workflowType, args, { sleep, CancellationScope });
      },
    },
    queries: {
      // Queries after the workflow function returned: the handlers it set
      // are still registered in this instance.
      handle(name, args) {
        if (state.info === undefined) throw `query \`${name}\`: the workflow has not run in this instance`;
        try {
          return handleQuery(name, args);
        } catch (e) {
          throw String(e?.message ?? e);
        }
      },
    },
  };
}
