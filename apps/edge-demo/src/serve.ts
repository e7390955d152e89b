import { createServer, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import { nonNegative, parseCommand, runMain } from '@dann/cli';
import { openModelFiles } from './model-files.ts';
import { describeModel } from './predict.ts';

const command = {
  name: 'serve',
  summary:
    'Serves the edge demo page (draw or drop a digit; onnxruntime-web classifies it in the browser), fully offline.',
  usage: 'npx nx run edge-demo:serve -- --model runs/NAME/model.onnx [--port 8080]',
  options: {
    model: {
      type: 'string',
      description: 'the ONNX model (its model.json sidecar must sit next to it)',
      default: 'runs/main/model.onnx',
    },
    host: { type: 'string', description: 'address to bind', default: '127.0.0.1' },
    port: { type: 'string', description: 'port (0 = any free port)', default: '8080' },
  },
} as const;

/** The onnxruntime-web files the page loads: the wasm-only ES module, its glue and the (single-build) wasm. */
const ORT_FILES = ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript',
  mjs: 'text/javascript',
  wasm: 'application/wasm',
  json: 'application/json',
  onnx: 'application/octet-stream',
};

/** Bundles the page's TypeScript (and the shared preparation module) for the browser, in memory. */
async function bundlePage(): Promise<string> {
  const result = await build({
    entryPoints: [join(import.meta.dirname, 'page/main.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    logLevel: 'silent',
    // The Node-only modules of @dann/data (files, fonts, canvas) and @dann/onnx (export, onnxruntime-node) are
    // unused by the page; their packages' "sideEffects": false drops them, and with them these imports.
    external: ['node:*', '@napi-rs/canvas', 'onnxruntime-node', 'onnx-proto', '@tensorflow/*', '@dann/training'],
  });
  return result.outputFiles[0].text;
}

runMain(async () => {
  const args = parseCommand(command, process.argv.slice(2));
  if (!args) return;
  const { values: v } = args;
  const port = nonNegative('port', v.port);
  const { sidecar, info } = openModelFiles(v.model);
  const ortDir = dirname(createRequire(import.meta.url).resolve('onnxruntime-web')); // .../onnxruntime-web/dist
  const files = new Map<string, { type: string; body: Buffer | string }>([
    ['/', { type: TYPES.html, body: readFileSync(join(import.meta.dirname, 'page/index.html')) }],
    ['/app.js', { type: TYPES.js, body: await bundlePage() }],
    ['/model.onnx', { type: TYPES.onnx, body: readFileSync(v.model) }],
    ['/model.json', { type: TYPES.json, body: readFileSync(sidecar) }],
    ...ORT_FILES.map(
      (f) => [`/ort/${f}`, { type: TYPES[f.split('.').pop()!], body: readFileSync(join(ortDir, f)) }] as const,
    ),
  ]);
  const reply = (res: ServerResponse, code: number, text: string) =>
    res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' }).end(`${text}\n`);
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'only GET and HEAD');
    const file = files.get(new URL(req.url ?? '/', 'http://localhost').pathname);
    if (!file) return reply(res, 404, 'not found');
    res.writeHead(200, {
      'content-type': file.type,
      'content-length': Buffer.byteLength(file.body),
      'cache-control': 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  });
  server.on('error', (e: NodeJS.ErrnoException) => {
    console.error(
      e.code === 'EADDRINUSE' ? `port ${port} is in use; pick another with --port.` : `the server failed: ${e.message}`,
    );
    process.exit(1);
  });
  server.listen(port, v.host, () => {
    const address = server.address() as { port: number };
    console.log(`model: ${v.model} (${describeModel(info)})`);
    console.log(
      `edge demo on http://${v.host}:${address.port}/ (offline: page, onnxruntime-web and the model are served from here; Ctrl-C stops)`,
    );
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => server.close(() => process.exit(0)));
});
