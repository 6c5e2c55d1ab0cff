// The trainer's backends: the registry, and the built-in entries registered in it.
import { cpuBackend } from './cpu.js';
import { backends } from './registry.js';
import { tfjsNodeBackend } from './tfjs-node.js';
import { wasmBackend } from './wasm/index.js';
import { webgpuBackend } from './webgpu.js';

export * from './registry.js';
export * from './wasm/index.js';
export { cpuBackend } from './cpu.js';
export { tfjsNodeBackend } from './tfjs-node.js';
export { describeAdapter, deviceErrorOf, gpuMemoryLimit, webgpuAdapter, webgpuBackend, type WebGpuAdapter } from './webgpu.js';

const builtins = [
  ['tfjs-node-gpu', tfjsNodeBackend('tfjs-node-gpu')],
  ['tfjs-node', tfjsNodeBackend('tfjs-node')],
  ['webgpu', webgpuBackend],
  ['wasm', wasmBackend('fast', true, 'WebAssembly with our kernels; products on the system\'s BLAS (OpenBLAS) when installed, else XNNPACK')],
  ['wasm-xnnpack', wasmBackend('fast', false, 'WebAssembly with our kernels, products on XNNPACK even where OpenBLAS is installed')],
  ['wasm-stock', wasmBackend('stock', false, "WebAssembly with tfjs's own kernels (plus the training kernels stock wasm lacks), for comparison")],
  ['cpu', cpuBackend],
] as const;
for (const [name, plugin] of builtins) if (!backends.has(name)) backends.register(name, plugin);
