/**
 * Builds the GPU ready-check pack: everything a GPU machine with no network (and perhaps no Node) needs to
 * run check.ts, under 64 MiB. `npx nx run tools:device-check -- --out dist/device-check`, then on the GPU
 * machine `sh dist/device-check/run.sh`.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Plugin } from 'esbuild';
import { parseCommand, runMain } from '@dann/cli';

/** What one call of the GPU machine can carry. */
export const PACK_LIMIT_BYTES = 64 * 2 ** 20;

const command = {
  name: 'device-check',
  summary: `Builds the GPU ready-check pack (Node, the check bundled with tfjs, dawn.node, the Vulkan loader .deb; under ${PACK_LIMIT_BYTES / 2 ** 20} MiB) for a linux-x64 GPU machine without network.`,
  usage: 'npx nx run tools:device-check -- [--out dist/device-check]',
  options: {
    out: { type: 'string', description: 'the pack folder (replaced)', default: 'dist/device-check' },
  },
} as const;

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** The check draws no digits: @dann/data's canvas (a native module) is left out of the bundle. */
const noCanvas: Plugin = {
  name: 'no-canvas',
  setup(b) {
    b.onResolve({ filter: /^@napi-rs\/canvas$/ }, () => ({ path: 'canvas', namespace: 'no-canvas' }));
    b.onLoad({ filter: /.*/, namespace: 'no-canvas' }, () => ({
      contents:
        "const none = () => { throw new Error('the device check has no canvas'); };\nexport const createCanvas = none;\nexport const GlobalFonts = { registerFromPath: none };\n",
    }));
  },
};

/** Builds the pack into `out`; returns its files and their sizes. */
export async function buildPack(out: string, log: (line: string) => void): Promise<{ file: string; bytes: number }[]> {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    throw new Error(
      `the pack is for linux-x64 GPU machines and carries this Node; build it on linux-x64, not ${process.platform}-${process.arch}.`,
    );
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'dist', 'linux-x64'), { recursive: true });
  await build({
    entryPoints: [join(here, 'check.ts')],
    outfile: join(out, 'check.mjs'),
    bundle: true,
    minify: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    plugins: [noCanvas],
    logLevel: 'error',
    // The CommonJS parts of the bundle (tfjs's wasm backend finds its .wasm files from __dirname).
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fu } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fu(import.meta.url); const __dirname = __dn(__filename);",
    },
  });
  const dawn = join(dirname(require.resolve('webgpu')), 'dist', 'linux-x64', 'dawn.node');
  writeFileSync(join(out, 'dist', 'linux-x64', 'dawn.node.gz'), gzipSync(readFileSync(dawn), { level: 9 }));
  const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  for (const f of readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) copyFileSync(join(wasmDir, f), join(out, f));
  writeFileSync(join(out, 'node.gz'), gzipSync(readFileSync(process.execPath), { level: 9 }));
  copyFileSync(join(here, 'run.sh'), join(out, 'run.sh'));
  try {
    execFileSync('apt-get', ['download', 'libvulkan1'], { cwd: out, stdio: 'pipe' });
  } catch (err) {
    log(
      `the pack has no Vulkan loader .deb (apt-get download libvulkan1: ${String((err as Error).message).split('\n')[0]}); run.sh will use the GPU machine's own`,
    );
  }
  const files = listFiles(out).map((file) => ({ file, bytes: statSync(join(out, file)).size }));
  const total = files.reduce((a, f) => a + f.bytes, 0);
  if (total > PACK_LIMIT_BYTES)
    throw new Error(
      `the pack holds ${(total / 2 ** 20).toFixed(1)} MiB, over the ${PACK_LIMIT_BYTES / 2 ** 20} MiB a GPU machine call carries.`,
    );
  return files;
}

function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(dir, join(prefix, e.name)) : [join(prefix, e.name)],
  );
}

if (process.argv[1]?.endsWith('build.ts'))
  runMain(async () => {
    const args = parseCommand(command, process.argv.slice(2));
    if (!args) return;
    const { out } = args.values;
    const files = await buildPack(out, (l) => console.log(l));
    for (const f of files) console.log(`${(f.bytes / 2 ** 20).toFixed(1).padStart(6)} MiB  ${f.file}`);
    const total = files.reduce((a, f) => a + f.bytes, 0);
    console.log(
      `device check pack: ${out} (${(total / 2 ** 20).toFixed(1)} MiB); on the GPU machine: sh ${join(out, 'run.sh')}`,
    );
  });
