#!/usr/bin/env node
// The build step of a caisson-workflow plugin, run by `caisson build`:
//
//   node transpile.mjs --typescript PATH/typescript.js --entry index SRC OUT
//
// 1. Every `.ts`/`.mts`/`.js`/`.mjs` file under SRC (not node_modules,
//    build, wit, dot-folders, packages, `.d.ts` or `*.test.*`) is transpiled with
//    TypeScript's `transpileModule` (types erased; no type check, as the
//    TypeScript SDK's bundler does not check either) into OUT, as `.js`.
// 2. Every `await x` becomes `__caisson_resume(await __caisson_suspend(x))`,
//    so `CancellationScope.current()` follows the code across awaits (the
//    engine has no AsyncLocalStorage; see lib/scope.js).
// 3. Relative imports get the `.js` the engine's module loader needs
//    (`./activities` -> `./activities.js`, `./dir` -> `./dir/index.js`,
//    `./x.ts` -> `./x.js`), as a bundler resolves them for the SDK.
// 4. OUT/__caisson_entry.js exports the component's interfaces for the
//    entry module (every exported function a workflow type).
// Other files are copied as they are.

import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

function parseArgs(argv) {
  const opts = { entry: 'index' };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--typescript') opts.typescript = argv[++i];
    else if (argv[i] === '--entry') opts.entry = argv[++i];
    else rest.push(argv[i]);
  }
  if (!opts.typescript || rest.length !== 2) {
    console.error('usage: transpile.mjs --typescript PATH/typescript.js [--entry index] SRC OUT');
    process.exit(2);
  }
  return { ...opts, src: resolve(rest[0]), out: resolve(rest[1]) };
}

const SOURCE = /\.(m?ts|m?js)$/;
const SKIP_DIRS = new Set(['node_modules', 'build', 'wit', 'target']);

function collect(dir, files = []) {
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      // A folder with its own package.json is a package (a vendored
      // caisson-workflow): imported by name and staged by the build.
      if (!SKIP_DIRS.has(name) && !existsSync(join(path, 'package.json'))) collect(path, files);
    } else {
      files.push(path);
    }
  }
  return files;
}

function outputName(rel) {
  return rel.replace(/\.mts$/, '.mjs').replace(/\.ts$/, '.js');
}

/** The `.js` specifier for a relative import, if the file it names exists
 * under another spelling. */
function resolveRelative(fromFile, spec) {
  if (!spec.startsWith('./') && !spec.startsWith('../')) return undefined;
  const base = resolve(dirname(fromFile), spec);
  if (/\.(m?ts)$/.test(spec)) return spec.replace(/\.mts$/, '.mjs').replace(/\.ts$/, '.js');
  if (/\.(m?js|json)$/.test(spec)) {
    // `./x.js` written for a `./x.ts` source (TypeScript's node16 style) is already right.
    return undefined;
  }
  for (const ext of ['.ts', '.js', '.mts', '.mjs']) {
    if (existsSync(base + ext)) return spec + (ext === '.mts' ? '.mjs' : ext === '.mjs' ? '.mjs' : '.js');
  }
  for (const ext of ['.ts', '.js']) {
    if (existsSync(join(base, 'index' + ext))) return `${spec.replace(/\/$/, '')}/index.js`;
  }
  return undefined;
}

function transformers(ts, fileName) {
  const rewriteSpecifiers = (context) => {
    const f = context.factory;
    const specifier = (node) => {
      if (!node || !ts.isStringLiteral(node)) return node;
      const fixed = resolveRelative(fileName, node.text);
      return fixed ? f.createStringLiteral(fixed) : node;
    };
    const visit = (node) => {
      if (ts.isImportDeclaration(node)) {
        return f.updateImportDeclaration(node, node.modifiers, node.importClause, specifier(node.moduleSpecifier), node.attributes);
      }
      if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
        return f.updateExportDeclaration(node, node.modifiers, node.isTypeOnly, node.exportClause, specifier(node.moduleSpecifier), node.attributes);
      }
      if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments.length >= 1) {
        return f.updateCallExpression(node, node.expression, node.typeArguments, [specifier(node.arguments[0]), ...node.arguments.slice(1)]);
      }
      return ts.visitEachChild(node, visit, context);
    };
    return (sf) => ts.visitNode(sf, visit);
  };

  const carryScopeAcrossAwait = (context) => {
    const f = context.factory;
    let used = false;
    const visit = (node) => {
      if (ts.isAwaitExpression(node)) {
        used = true;
        const awaited = ts.visitNode(node.expression, visit);
        return f.createCallExpression(f.createIdentifier('__caisson_resume'), undefined, [
          f.createAwaitExpression(f.createCallExpression(f.createIdentifier('__caisson_suspend'), undefined, [awaited])),
        ]);
      }
      return ts.visitEachChild(node, visit, context);
    };
    return (sf) => {
      used = false;
      const out = ts.visitNode(sf, visit);
      if (!used) return out;
      const hooks = f.createImportDeclaration(
        undefined,
        f.createImportClause(
          false,
          undefined,
          f.createNamedImports([
            f.createImportSpecifier(false, undefined, f.createIdentifier('__caisson_suspend')),
            f.createImportSpecifier(false, undefined, f.createIdentifier('__caisson_resume')),
          ])
        ),
        f.createStringLiteral('caisson-workflow')
      );
      return f.updateSourceFile(out, [hooks, ...out.statements]);
    };
  };

  return { after: [rewriteSpecifiers, carryScopeAcrossAwait] };
}

/** Transpiles the tree `src` into `out` with the TypeScript module `ts`
 * (see the top of this file); throws an Error listing syntax errors. */
export function transpileTree(ts, src, out, entryName = 'index') {
  const args = { src, out, entry: entryName };
  const entries = [];
  for (const file of collect(args.src)) {
    const rel = relative(args.src, file);
    const dest = join(args.out, outputName(rel));
    mkdirSync(dirname(dest), { recursive: true });
    if (!SOURCE.test(file) || file.endsWith('.d.ts') || /\.test\.[mc]?[jt]s$/.test(file)) {
      if (!file.endsWith('.d.ts')) copyFileSync(file, dest);
      continue;
    }
    const text = readFileSync(file, 'utf8');
    const result = ts.transpileModule(text, {
      fileName: file,
      reportDiagnostics: true,
      compilerOptions: {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ESNext,
        allowJs: true,
        isolatedModules: true,
        useDefineForClassFields: true,
        sourceMap: false,
      },
      transformers: transformers(ts, file),
    });
    const errors = (result.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
    if (errors.length) {
      const lines = errors.map((d) => {
        const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
        const at = where ? `${rel}:${where.line + 1}:${where.character + 1}` : rel;
        return `${at}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
      throw new Error(lines.join('\n'));
    }
    writeFileSync(dest, result.outputText);
    entries.push(outputName(rel));
  }
  const entry = [`${args.entry}.js`, `${args.entry}.mjs`].find((e) => entries.includes(e));
  if (!entry) {
    throw new Error(`${args.src}: no ${args.entry}.ts or ${args.entry}.js: the module whose exported functions are the workflow types`);
  }
  writeFileSync(
    join(args.out, '__caisson_entry.js'),
    `// Generated by caisson-workflow/tools/transpile.mjs: the component's exports.\n` +
      `import * as workflows from './${entry}';\n` +
      `import { workflowExports } from 'caisson-workflow/lib/entry.js';\n` +
      `const component = workflowExports(workflows);\n` +
      `export const declarations = component.declarations;\n` +
      `export const dynamic = component.dynamic;\n` +
      `export const queries = component.queries;\n`
  );
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const tsModule = await import(pathToFileURL(args.typescript).href);
  try {
    transpileTree(tsModule.default ?? tsModule, args.src, args.out, args.entry);
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
