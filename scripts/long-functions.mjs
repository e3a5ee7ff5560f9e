#!/usr/bin/env node
// Lists functions longer than a limit (default 60 lines) in the engine folders, with the
// TypeScript compiler's own parse: every function declaration, method, accessor, constructor,
// function expression and arrow function counts, each over its whole span (a function holding a
// long closure is long too). Usage: node scripts/long-functions.mjs [--max N] [folder…]
// Exit code 1 when any is found. test/code/function-length.test.ts runs it in the suite.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const ENGINE_FOLDERS = ['src/sync', 'src/events', 'src/jobs'];
export const MAX_FUNCTION_LINES = 60;

const root = fileURLToPath(new URL('..', import.meta.url));

function* tsFiles(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* tsFiles(p);
    else if (/\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts')) yield p;
  }
}

function nameOf(node, sf) {
  if (node.name) return node.name.getText(sf);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent)) return parent.name.getText(sf);
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText(sf);
  if (parent && ts.isPropertyDeclaration(parent)) return parent.name.getText(sf);
  return '(anonymous)';
}

/** Every function over `max` lines in the given folders (paths relative to the repository). */
export function longFunctions(folders = ENGINE_FOLDERS, max = MAX_FUNCTION_LINES) {
  const found = [];
  for (const folder of folders) {
    for (const file of tsFiles(join(root, folder))) {
      const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
      const visit = (node) => {
        if (ts.isFunctionLike(node) && 'body' in node && node.body) {
          const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
          const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
          const lines = end - start + 1;
          if (lines > max) found.push({ file: relative(root, file), line: start + 1, name: nameOf(node, sf), lines });
        }
        ts.forEachChild(node, visit);
      };
      visit(sf);
    }
  }
  return found;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--max');
  const max = at >= 0 ? Number(args.splice(at, 2)[1]) : MAX_FUNCTION_LINES;
  const list = longFunctions(args.length ? args : ENGINE_FOLDERS, max);
  for (const f of list) console.log(`${f.file}:${f.line} ${f.name}: ${f.lines} lines`);
  console.log(`${list.length} function(s) over ${max} lines`);
  process.exitCode = list.length ? 1 : 0;
}
