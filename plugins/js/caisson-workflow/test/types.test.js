// index.d.ts against code written for the SDK's types: the test plugin
// (every feature), the `caisson new workflow typescript` template and the
// samples type-check with `strict` (the build only erases types, so this
// is where the declarations are held to the API).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const packageDir = join(here, '..');
const require = createRequire(import.meta.url);
const ts = require(require.resolve('typescript', { paths: [join(packageDir, '..', 'node_modules'), join(packageDir, '..', '..', 'node_modules')] }));

function check(files) {
  const options = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    skipLibCheck: true,
    types: [],
    paths: { 'caisson-workflow': [join(packageDir, 'index.d.ts')] },
  };
  const program = ts.createProgram(files, options);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : '';
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
}

test('the test plugin and its samples type-check against index.d.ts', () => {
  const plugin = join(packageDir, '..', 'test-workflows-ts');
  assert.deepEqual(check([join(plugin, 'index.ts')]), []);
});

test('the typescript-workflow template type-checks against index.d.ts', () => {
  const template = join(packageDir, '..', '..', '..', 'host', 'templates', 'typescript-workflow');
  const dir = mkdtempSync(join(tmpdir(), 'caisson-template-'));
  for (const name of readdirSync(template).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))) {
    const text = readFileSync(join(template, name), 'utf8').replaceAll('{{camel}}', 'helloFlow').replaceAll('{{name}}', 'hello-flow');
    writeFileSync(join(dir, name), text);
  }
  assert.deepEqual(check([join(dir, 'index.ts')]), []);
});

test('a misuse is a type error (the declarations are not `any`)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'caisson-types-'));
  writeFileSync(
    join(dir, 'bad.ts'),
    `import { proxyActivities, defineUpdate, setHandler } from 'caisson-workflow';
     const { greet } = proxyActivities<{ greet(name: string): Promise<string> }>({ startToCloseTimeout: '1m' });
     export async function wf(): Promise<number> { return await greet(42); }
     const u = defineUpdate<number, [number]>('u');
     export async function wf2(): Promise<void> { setHandler(u, (s: string) => 1); }`
  );
  const errors = check([join(dir, 'bad.ts')]);
  assert.equal(errors.length, 3, errors.join('\n'));
});
