// The page's script: loads an exported model (primer train --save) with tfjs-layers, and
// samples a continuation of the prompt as the user types. Bundled by build.mjs.
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { contextLength, generate, nextTokenLogits } from '@primer-search/layers';

interface SavedTokenizer {
  name: string;
  vocabSize: number;
  endOfDocument: number;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = (text: string, error = false) => {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
};

/** The byte tokenizer: UTF-8 bytes, 256 ends a document. (The page knows no other tokenizer yet.) */
function byteTokenizer(saved: SavedTokenizer) {
  if (saved.name !== 'byte') throw new Error(`this page decodes byte tokens; the model was trained with the ${saved.name} tokenizer`);
  const decoder = new TextDecoder('utf-8', { fatal: false });
  return {
    encode: (text: string) => Array.from(new TextEncoder().encode(text)),
    decode: (ids: number[]) => decoder.decode(Uint8Array.from(ids.filter((i) => i < 256))),
    endOfDocument: saved.endOfDocument,
  };
}

async function start(): Promise<void> {
  const modelUrl = new URLSearchParams(location.search).get('model') ?? './model/';
  setWasmPaths(new URL('./dist/', location.href).href);
  let backend = 'cpu';
  for (const name of ['wasm', 'webgl', 'cpu']) {
    try {
      if (await tf.setBackend(name)) {
        backend = name;
        break;
      }
    } catch {
      // try the next one
    }
  }
  await tf.ready();
  const [model, saved] = await Promise.all([
    tf.loadLayersModel(new URL('model.json', new URL(modelUrl, location.href)).href),
    fetch(new URL('tokenizer.json', new URL(modelUrl, location.href))).then((r) => {
      if (!r.ok) throw new Error(`cannot load ${modelUrl}tokenizer.json: HTTP ${r.status}`);
      return r.json() as Promise<SavedTokenizer>;
    }),
  ]);
  const tokenizer = byteTokenizer(saved);
  const meta = (model.getUserDefinedMetadata() as { primerSearch?: Record<string, unknown> } | undefined)?.primerSearch ?? {};
  const v = meta.validation as { perplexity: number } | undefined;
  $('about').textContent =
    `${meta.name ?? model.name}: ${model.countParams().toLocaleString('en-US')} parameters, ${meta.layers ?? '?'} layers, context ${contextLength(model)} tokens, ` +
    `trained on ${meta.dataset ?? '?'} (${saved.name} tokens)${v ? `, validation perplexity ${v.perplexity.toFixed(2)}` : ''} · TensorFlow.js ${tf.version.tfjs} on ${backend}`;

  const prompt = $<HTMLTextAreaElement>('prompt');
  const output = $('output');
  let run = 0;
  const regenerate = async () => {
    const mine = ++run;
    const text = prompt.value;
    const ids = tokenizer.encode(text);
    output.replaceChildren(Object.assign(document.createElement('span'), { className: 'prompt', textContent: text }));
    const continuation = output.appendChild(document.createElement('span'));
    continuation.id = 'continuation';
    if (ids.length === 0) {
      status('type a prompt');
      return;
    }
    status('generating…');
    const sampled: number[] = [];
    const t0 = performance.now();
    await generate(model, ids, {
      tokens: Number($<HTMLInputElement>('tokens').value) || 160,
      temperature: Number($<HTMLInputElement>('temperature').value),
      seed: Number($<HTMLInputElement>('seed').value) || 0,
      stopAt: tokenizer.endOfDocument,
      onToken: async (id) => {
        if (mine !== run) return false;
        sampled.push(id);
        continuation.textContent = tokenizer.decode(sampled);
        // let the page paint and take keystrokes between tokens
        await new Promise((r) => setTimeout(r, 0));
        return mine === run;
      },
    });
    if (mine === run) {
      const seconds = (performance.now() - t0) / 1000;
      status(`${sampled.length} tokens in ${seconds.toFixed(1)} s (${(sampled.length / seconds).toFixed(0)} tokens/s)`);
      document.body.dataset.generated = String(run);
    }
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(() => void regenerate().catch((e) => status(String(e), true)), 250);
  };
  for (const id of ['prompt', 'tokens', 'temperature', 'seed']) $(id).addEventListener('input', later);
  prompt.disabled = false;

  // for tests and the curious: the next-token logits of a prompt, as Node computes them
  (window as unknown as { primerPage: unknown }).primerPage = {
    backend,
    logits: (text: string) => Array.from(nextTokenLogits(model, tokenizer.encode(text))),
  };
  document.body.dataset.ready = 'true';
  await regenerate();
}

start().catch((e) => {
  status(`could not start: ${(e as Error).message}`, true);
  document.body.dataset.ready = 'failed';
});
