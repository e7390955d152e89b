// Module boundaries, checked for one project before its tests run (scripts/test.mjs):
// - a lib imports only libs; an app imports libs, never another app; tools may also use apps' exports;
// - every @dann/* package it imports is declared in its package.json (dependencies or devDependencies);
// - no relative import leaves the project's folder (go through the package instead).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g;

function sourceFiles(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) sourceFiles(p, out);
    else if (/\.(ts|mts|tsx)$/.test(entry.name)) out.push(p);
  }
  return out;
}

/** The kind of the project at `projectDir` (relative to `root`): 'lib', 'app' or 'tools'. */
function kindOf(root, projectDir) {
  const rel = relative(root, projectDir).split(sep);
  return rel[0] === 'libs' ? 'lib' : rel[0] === 'apps' ? 'app' : 'tools';
}

/** Maps each workspace package name to its project's folder and kind. */
function workspacePackages(root) {
  const found = new Map();
  for (const group of ['libs', 'apps']) {
    const base = join(root, group);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) {
      const file = join(base, name, 'package.json');
      if (existsSync(file))
        found.set(JSON.parse(readFileSync(file, 'utf8')).name, {
          dir: join(base, name),
          kind: kindOf(root, join(base, name)),
        });
    }
  }
  const tools = join(root, 'tools', 'package.json');
  if (existsSync(tools))
    found.set(JSON.parse(readFileSync(tools, 'utf8')).name, { dir: join(root, 'tools'), kind: 'tools' });
  return found;
}

/** One sentence per import of `projectDir`'s sources that crosses a boundary; empty when all is well. */
export function boundaryViolations(root, projectDir) {
  const kind = kindOf(root, projectDir);
  const pkgFile = join(projectDir, 'package.json');
  const pkg = existsSync(pkgFile) ? JSON.parse(readFileSync(pkgFile, 'utf8')) : {};
  const declared = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {})]);
  const packages = workspacePackages(root);
  const problems = [];
  for (const file of sourceFiles(join(projectDir, 'src'))) {
    const text = readFileSync(file, 'utf8');
    const where = relative(root, file);
    for (const [, spec] of text.matchAll(IMPORT)) {
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec);
        if (!target.startsWith(projectDir + sep))
          problems.push(`${where} imports ${spec}, outside its project; import the package instead.`);
        continue;
      }
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
      const other = packages.get(name);
      if (!other) continue;
      if (other.dir === projectDir) problems.push(`${where} imports its own package ${name}; use a relative import.`);
      else if (kind === 'lib' && other.kind !== 'lib')
        problems.push(
          `${where}: a lib imports ${other.kind === 'app' ? 'the app' : 'the tools package'} ${name}; libs import only libs.`,
        );
      else if (kind === 'app' && other.kind === 'app')
        problems.push(`${where}: an app imports the app ${name}; move what they share into a lib.`);
      else if (!declared.has(name))
        problems.push(`${where} imports ${name}, which ${relative(root, pkgFile)} does not declare.`);
    }
  }
  return problems;
}
