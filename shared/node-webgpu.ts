/**
 * WebGPU in Node through the optional `webgpu` package (Google's Dawn): a GPU of any vendor
 * (Vulkan, Metal or Direct3D 12) without CUDA. Loaded only when asked for.
 */

interface GpuLike {
  requestAdapter(): Promise<unknown>;
}
interface DawnModule {
  create(options: string[]): GpuLike;
  globals: Record<string, unknown>;
}

/** Dawn's binding: native and optional, never bundled (packaging/worker-package.ts keeps it external). */
const DAWN = 'webgpu';
/** Set by the volunteer bundle's build (packaging/worker-package.ts). */
const BUNDLED = process.env['ARBOR_BUNDLE'] === '1';

/**
 * Makes tfjs's `webgpu` backend available: undefined when it is, else why not, in one line
 * a volunteer can act on.
 */
export async function installNodeWebGpu(): Promise<string | undefined> {
  let dawn: DawnModule;
  try {
    dawn = (await import('webgpu')) as unknown as DawnModule;
  } catch {
    return BUNDLED
      ? `webgpu: Dawn's binding is not installed where this worker looks (npm install --prefix ~/.arbor ${DAWN}, then start again)`
      : `webgpu: the optional package '${DAWN}' is not installed (npm install ${DAWN})`;
  }
  const gpu = dawn.create([]);
  if ((await gpu.requestAdapter()) === null)
    return 'webgpu: Dawn found no GPU adapter (it needs a Vulkan, Metal or Direct3D 12 driver)';
  Object.assign(globalThis, dawn.globals);
  // Node 20 has no navigator; Node 21+ has one without gpu.
  const navigatorLike = (globalThis as { navigator?: object }).navigator;
  if (navigatorLike === undefined)
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
  else Object.defineProperty(navigatorLike, 'gpu', { value: gpu, configurable: true });
  await import('@tensorflow/tfjs-backend-webgpu');
  return undefined;
}
