/** The native product path's state: on (with the addon) or off. Our wasm kernels ask `nativeAddon()`. */
import { loadNativeBlas, type NativeBlasAddon } from './native-blas.js';

/** The native product path, when on (see `setNativeProducts`). */
let native: NativeBlasAddon | undefined;

/**
 * Turns the native product path on (when it loads here) or off; returns what it is now, with
 * the reason when it is off. Off, products run on XNNPACK as before.
 */
export function setNativeProducts(on: boolean): { on: boolean; library?: string; core?: string; reason?: string } {
  if (!on) {
    native = undefined;
    return { on: false, reason: 'turned off' };
  }
  const s = loadNativeBlas();
  native = s.ok ? s.addonModule : undefined;
  return s.ok ? { on: true, library: s.library, core: s.core } : { on: false, reason: s.reason };
}

/** Whether products run natively now. */
export const nativeProductsOn = (): boolean => native !== undefined;

/** The native addon while the native path is on (our other wasm kernels use its exp and loss too). */
export const nativeAddon = (): NativeBlasAddon | undefined => native;

