import { existsSync, readFileSync } from 'node:fs';
import { checkModelInfo, type ModelInfo } from '@dann/onnx';

/** The model file and its model.json, checked for the CLI and the server; one sentence per problem. */
export function openModelFiles(model: string): { sidecar: string; info: ModelInfo } {
  const sidecar = model.replace(/\.onnx$/, '') + '.json';
  if (!existsSync(model))
    throw new Error(
      `${model} does not exist; export a model with npx nx run tools:export-onnx -- runs/NAME (or run npm start).`,
    );
  if (!existsSync(sidecar))
    throw new Error(`${sidecar} (the model's metadata) is missing; export the model again with tools:export-onnx.`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(sidecar, 'utf8'));
  } catch {
    throw new Error(`${sidecar} is not valid JSON; export the model again with tools:export-onnx.`);
  }
  return { sidecar, info: checkModelInfo(parsed, sidecar) };
}
