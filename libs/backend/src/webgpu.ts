import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

/** A GPU adapter as dawn.node (the `webgpu` package) lists it. */
export interface GpuAdapter {
  /** Dawn's backend: vulkan, opengles, metal, d3d12. */
  readonly backend: string;
  /** The adapter's device name, e.g. "NVIDIA H200" or "llvmpipe (LLVM 15.0.6, 256 bits)". */
  readonly name: string;
  /** A CPU implementation (Mesa's llvmpipe/lavapipe, SwiftShader): correct, never fast. */
  readonly software: boolean;
}

/** The adapters dawn.node can see, and why it may see none. */
export interface AdapterSurvey {
  readonly adapters: GpuAdapter[];
  /** One clause per backend that gave no adapter, e.g. "libvulkan.so.1 (the Vulkan loader; ...) is not installed". */
  readonly problems: string[];
}

interface DawnGpu {
  requestAdapter(options: { featureLevel?: string; powerPreference?: string }): Promise<DawnAdapter | null>;
}
interface DawnAdapter {
  readonly info: { vendor: string; architecture: string; device: string; description: string };
  readonly features: ReadonlySet<string>;
  readonly limits: Record<string, number>;
  requestDevice(descriptor: object): Promise<unknown>;
}
interface DawnModule {
  create(flags: string[]): DawnGpu;
  globals: object;
}

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|software/i;

/** Dawn's native backend here, then the one Mesa's software GPU is reached through on Linux. */
function backendsOf(platform: NodeJS.Platform): { hardware: string; software?: string } {
  if (platform === 'darwin') return { hardware: 'metal' };
  if (platform === 'win32') return { hardware: 'd3d12' };
  return { hardware: 'vulkan', software: 'opengles' };
}

/** The shared libraries each Linux backend dlopens, and the Debian package that has them. */
const LINUX_LIBRARIES: Record<string, { lib: string; what: string; pkg: string }> = {
  vulkan: { lib: 'libvulkan.so.1', what: 'the Vulkan loader', pkg: 'libvulkan1' },
  opengles: { lib: 'libEGL.so.1', what: 'EGL', pkg: 'libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri' },
};

/** Whether the dynamic linker can find `lib`: in the ld.so cache or a LD_LIBRARY_PATH folder. */
export function hasSharedLibrary(lib: string, env: NodeJS.ProcessEnv = process.env): boolean {
  for (const dir of (env.LD_LIBRARY_PATH ?? '').split(':')) if (dir && existsSync(join(dir, lib))) return true;
  try {
    return readFileSync('/etc/ld.so.cache').includes(lib);
  } catch {
    return false;
  }
}

let dawn: DawnModule | null = null;
/** The adapter tfjs's webgpu backend runs on in this process, once one is open. */
let opened: { key: string; description: string } | null = null;

async function loadDawn(): Promise<DawnModule> {
  if (dawn) return dawn;
  // Mesa's EGL needs no display for compute when told so; a user's own setting wins.
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const m = (await import('webgpu')) as unknown as DawnModule;
  Object.assign(globalThis, m.globals);
  dawn = m;
  return m;
}

/** The adapter list dawn.node prints when asked for a name no adapter has (its only way to list them). */
export function parseAdapterList(message: string, backend: string): GpuAdapter[] {
  const adapters: GpuAdapter[] = [];
  for (const line of message.split('\n')) {
    const m = /^ \* backend: '([^']*)', name: '(.*)'$/.exec(line);
    if (m && m[1] === backend) adapters.push({ backend, name: m[2], software: SOFTWARE.test(m[2]) });
  }
  return adapters;
}

async function listBackend(m: DawnModule, backend: string): Promise<GpuAdapter[]> {
  const gpu = m.create([`backend=${backend}`, 'adapter=dann: list the adapters']);
  try {
    // No adapter at all: dawn resolves null instead of listing them.
    await gpu.requestAdapter({ featureLevel: 'compatibility' });
    return [];
  } catch (err) {
    return parseAdapterList(String((err as Error).message ?? err), backend);
  }
}

/**
 * The GPU adapters dawn.node sees: the native backend's (Vulkan on Linux), then, when `software` is set,
 * the software GPU's (Mesa's GLES on llvmpipe). A backend whose libraries are missing is not asked (dawn
 * would only print a warning) and is named in `problems`.
 */
export async function surveyAdapters(o: { software?: boolean } = {}): Promise<AdapterSurvey> {
  const m = await loadDawn();
  const platform = process.platform;
  const { hardware, software } = backendsOf(platform);
  const adapters: GpuAdapter[] = [];
  const problems: string[] = [];
  for (const backend of o.software && software ? [hardware, software] : [hardware]) {
    const needs = platform === 'linux' ? LINUX_LIBRARIES[backend] : undefined;
    if (needs && !hasSharedLibrary(needs.lib)) {
      problems.push(`${needs.lib} (${needs.what}; Debian/Ubuntu: ${needs.pkg}) is not installed`);
      continue;
    }
    // From the software GPU's backend only its software adapters: a GPU it also lists is the native backend's.
    const found = (await listBackend(m, backend)).filter((a) => backend === hardware || a.software);
    if (found.length === 0)
      problems.push(
        backend === 'vulkan'
          ? 'Vulkan lists no GPU (no driver ICD: for NVIDIA, nvidia_icd.json)'
          : `${backend} lists no software GPU`,
      );
    adapters.push(...found);
  }
  return { adapters, problems };
}

/** The adapter `--gpu index` means: the index-th hardware adapter; a software one only when allowed and there is no hardware. */
export function chooseAdapter(
  survey: AdapterSurvey,
  index: number,
  allowSoftware: boolean,
): { adapter: GpuAdapter; note?: string } | { failure: string } {
  const hardware = survey.adapters.filter((a) => !a.software);
  const chosen = hardware[index];
  if (chosen) {
    const twin = hardware.findIndex((a) => a.name === chosen.name);
    if (twin < index)
      return {
        failure: `GPU ${index} (${chosen.name}) has the same name as GPU ${twin}, and dawn.node tells adapters apart only by name: give this trainer that one GPU alone (a container or pod with one GPU) and use --gpu 0`,
      };
    return { adapter: chosen };
  }
  const why =
    hardware.length === 0
      ? `no hardware GPU adapter${survey.problems.length ? `, as ${survey.problems.join(' and ')}` : ''}`
      : `no GPU ${index}: the hardware adapters are ${hardware.map((a, i) => `${i} ${a.name}`).join(', ')}`;
  const soft = survey.adapters.find((a) => a.software);
  if (allowSoftware && soft) return { adapter: soft, note: why };
  return { failure: why };
}

/** The same device limits tfjs-backend-webgpu asks for: the adapter's, not WebGPU's small defaults. */
const LIMITS = [
  'maxComputeWorkgroupStorageSize',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupSizeX',
  'maxComputeInvocationsPerWorkgroup',
];

/**
 * Opens `adapter` and makes it tfjs's `webgpu` backend (tfjs-backend-webgpu's kernels, including every
 * gradient the cpu backend has). Returns how to name it: its name, vendor and dawn backend.
 */
export async function activateWebgpu(adapter: GpuAdapter): Promise<string> {
  // Already open (a second selectBackend, e.g. one benchmark configuration after another): its device and
  // compiled kernels are kept.
  const key = `${adapter.backend}/${adapter.name}`;
  if (opened?.key === key && tf.findBackend('webgpu')) {
    if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend did not initialise');
    return opened.description;
  }
  const m = await loadDawn();
  const gpu = m.create([`backend=${adapter.backend}`, `adapter=${adapter.name}`]);
  // GLES reaches only WebGPU's compatibility level; a native backend gets the core one.
  const a = await gpu.requestAdapter({
    featureLevel: adapter.backend === 'opengles' ? 'compatibility' : 'core',
    powerPreference: 'high-performance',
  });
  if (!a) throw new Error(`dawn.node did not open the ${adapter.backend} adapter ${adapter.name}`);
  const requiredLimits = Object.fromEntries(LIMITS.map((k) => [k, a.limits[k]]));
  const requiredFeatures = ['timestamp-query'].filter((f) => a.features.has(f));
  const device = await a.requestDevice({ requiredLimits, requiredFeatures });
  // tfjs-backend-webgpu checks for navigator.gpu before it builds a backend (Node 20 has no navigator).
  const nav = ((globalThis as { navigator?: object }).navigator ??= {});
  Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  // biome-ignore lint/suspicious/noExplicitAny: dawn.node's objects are WebGPU's; the types package is not ours to pin.
  tf.registerBackend('webgpu', () => new WebGPUBackend(device as any, a.info as any));
  if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend did not initialise');
  const vendor = a.info.vendor ? `, vendor ${a.info.vendor}` : '';
  const description = `${adapter.software ? 'software GPU' : 'GPU'} ${adapter.name}${vendor} (WebGPU on ${adapter.backend}, dawn.node)`;
  opened = { key, description };
  return description;
}

/**
 * For tests that need a WebGPU adapter (a software one will do): false when one exists, or when
 * CI=true (CI installs Mesa, so a missing adapter there must fail the tests, not skip them);
 * otherwise the one line that says what to install.
 */
export async function webgpuTestSkip(env: NodeJS.ProcessEnv = process.env): Promise<string | false> {
  if (env.CI === 'true') return false;
  let survey: AdapterSurvey;
  try {
    survey = await surveyAdapters({ software: true });
  } catch (err) {
    return `the webgpu package did not load (${String((err as Error).message).split('\n')[0]})`;
  }
  if (survey.adapters.length > 0) return false;
  return `no WebGPU adapter (${survey.problems.join('; ')}): install a GPU driver or Mesa (Debian/Ubuntu: ${LINUX_LIBRARIES.opengles.pkg}) to run the webgpu tests`;
}
