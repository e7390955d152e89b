import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// The checker is the workspace's own script (scripts/ is no project), loaded by path.
const script = pathToFileURL(join(fileURLToPath(new URL('../..', import.meta.url)), 'scripts', 'boundaries.mjs')).href;
const { boundaryViolations } = (await import(script)) as {
  boundaryViolations: (root: string, project: string) => string[];
};

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'dann-bounds-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

test('module boundaries: libs import only libs, apps never apps, every workspace package is declared, nothing reaches outside its folder', () => {
  const pkg = (name: string, deps: string[] = []) =>
    JSON.stringify({ name, dependencies: Object.fromEntries(deps.map((d) => [d, '0.1.0'])) });
  const root = tree({
    'libs/a/package.json': pkg('@x/a'),
    'libs/a/src/index.ts': 'export const a = 1;\n',
    'libs/b/package.json': pkg('@x/b', ['@x/a']),
    'libs/b/src/index.ts':
      "import { a } from '@x/a';\nimport { s } from '@x/server';\nimport { c } from '@x/c';\nexport const b = a + s + c;\n",
    'libs/c/package.json': pkg('@x/c'),
    'libs/c/src/index.ts': 'export const c = 3;\n',
    'apps/server/package.json': pkg('@x/server', ['@x/a']),
    // (The escaping import is spelt in two pieces, so the check of this very file does not read it as one.)
    'apps/server/src/main.ts':
      "import { a } from '@x/a';\nimport { w } from '@x/web';\nimport { q } from '" +
      "../../../libs/a/src/index.ts';\nconst m = await import('./local.ts');\nexport const s = a + w + q + m.x;\n",
    'apps/server/src/local.ts': 'export const x = 1;\n',
    'apps/web/package.json': pkg('@x/web'),
    'apps/web/src/main.ts': 'export const w = 2;\n',
    'tools/package.json': pkg('@x/tools', ['@x/a', '@x/web']),
    'tools/src/bench.ts': "import { a } from '@x/a';\nimport { w } from '@x/web';\nexport const t = a + w;\n",
  });
  assert.deepEqual(boundaryViolations(root, join(root, 'libs/a')), []);
  assert.deepEqual(boundaryViolations(root, join(root, 'libs/b')), [
    'libs/b/src/index.ts: a lib imports the app @x/server; libs import only libs.',
    'libs/b/src/index.ts imports @x/c, which libs/b/package.json does not declare.',
  ]);
  assert.deepEqual(boundaryViolations(root, join(root, 'apps/server')), [
    'apps/server/src/main.ts: an app imports the app @x/web; move what they share into a lib.',
    'apps/server/src/main.ts imports ../../../libs/a/src/index.ts, outside its project; import the package instead.',
  ]);
  assert.deepEqual(boundaryViolations(root, join(root, 'tools')), [], "tools may use an app's exports it declares");
  rmSync(root, { recursive: true });
});
