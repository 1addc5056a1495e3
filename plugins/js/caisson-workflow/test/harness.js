// Runs workflow sources the way a component does: transpiled by
// tools/transpile.mjs (TypeScript erased, awaits carrying the scope),
// imported with `caisson-workflow` resolving to this package and the host
// simulated by fake-host.js. Each call gets a fresh module graph (a new
// temporary folder), as each run gets a fresh component instance.
import { transpileTree } from '../tools/transpile.mjs';
import { cpSync, mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const packageDir = join(here, '..');
const require = createRequire(import.meta.url);

function typescriptPath() {
  // plugins/js/node_modules (the checkout), or the project's node_modules.
  for (const candidate of [join(packageDir, '..', 'node_modules'), join(packageDir, '..', '..', 'node_modules')]) {
    try {
      return require.resolve('typescript', { paths: [candidate] });
    } catch {}
  }
  return require.resolve('typescript');
}

/** Builds `files` ({ 'index.ts': source, ... }) and imports the component
 * exports it would have: { declarations, dynamic, queries }. */
export async function build(files) {
  const root = mkdtempSync(join(tmpdir(), 'caisson-workflow-test-'));
  const src = join(root, 'src');
  const out = join(root, 'out');
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(src, name)), { recursive: true });
    writeFileSync(join(src, name), text);
  }
  transpileTree(require(typescriptPath()), src, out);
  mkdirSync(join(out, 'node_modules'), { recursive: true });
  cpSync(packageDir, join(out, "node_modules", "caisson-workflow"), { recursive: true, filter: (p) => p !== join(packageDir, "test") });
  return import(pathToFileURL(join(out, '__caisson_entry.js')).href);
}
