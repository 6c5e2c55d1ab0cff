// The page's script: loads an exported model (primer train --save) with tfjs-layers, and
// samples a continuation of the prompt as the user types. Bundled by build.mjs.
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { tokenizerFromSaved, type SavedTokenizer } from '@primer-search/datasets/browser';
import { contextLength, generate, nextTokenLogits } from '@primer-search/layers';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = (text: string, error = false) => {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
};

/** The sampling settings from the page's fields, or what is wrong with one of them (the field is marked). */
function readSettings(): { tokens: number; temperature: number; seed: number } | string {
  const field = (id: string, ok: (v: number) => boolean, what: string): number | string => {
    const input = $<HTMLInputElement>(id);
    const text = input.value.trim();
    const v = Number(text);
    const good = text !== '' && Number.isFinite(v) && ok(v);
    input.setAttribute('aria-invalid', String(!good));
    // (a number field gives '' for text that is not a number)
    return good ? v : `${id}: ${what}${text === '' ? ' (it is empty, or not a number)' : `, not ${text}`}`;
  };
  const tokens = field('tokens', (v) => Number.isInteger(v) && v >= 1 && v <= MAX_TOKENS, `a whole number from 1 to ${MAX_TOKENS}`);
  const temperature = field('temperature', (v) => v >= 0 && v <= 10, 'a number from 0 (always the likeliest token) to 10');
  const seed = field('seed', (v) => Number.isInteger(v) && v >= 0 && v <= 2 ** 31 - 1, `a whole number from 0 to ${2 ** 31 - 1}`);
  for (const x of [tokens, temperature, seed]) if (typeof x === 'string') return x;
  return { tokens: tokens as number, temperature: temperature as number, seed: seed as number };
}

/** The most tokens one generation may sample (the field's max). */
const MAX_TOKENS = 1000;

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
  const base = new URL(modelUrl, location.href);
  const fetchText = async (file: string) => {
    const r = await fetch(new URL(file, base));
    if (!r.ok) throw new Error(`cannot load ${new URL(file, base).pathname}: HTTP ${r.status}`);
    return r.text();
  };
  const [model, saved] = await Promise.all([tf.loadLayersModel(new URL('model.json', base).href), fetchText('tokenizer.json').then((t) => JSON.parse(t) as SavedTokenizer)]);
  // the tokenizer it was trained with: byte, or BPE from its vocabulary file
  const tokenizer = tokenizerFromSaved(saved, saved.vocabularyFile ? await fetchText(saved.vocabularyFile) : undefined);
  const encode = (text: string) => Array.from(tokenizer.encode(text));
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
    const ids = encode(text);
    output.replaceChildren(Object.assign(document.createElement('span'), { className: 'prompt', textContent: text }));
    const continuation = output.appendChild(document.createElement('span'));
    continuation.id = 'continuation';
    if (ids.length === 0) {
      status('type a prompt');
      return;
    }
    const settings = readSettings();
    if (typeof settings === 'string') {
      status(settings, true);
      return;
    }
    status('generating…');
    const sampled: number[] = [];
    const t0 = performance.now();
    await generate(model, ids, {
      ...settings,
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
    logits: (text: string) => Array.from(nextTokenLogits(model, encode(text))),
    /** Saves the model in the page (in memory) and loads it back; the largest logit difference on `text` (0 when the round trip is exact). */
    roundTrip: async (text: string) => {
      let artifacts: tf.io.ModelArtifacts | undefined;
      await model.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
      const again = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
      const a = nextTokenLogits(model, encode(text));
      const b = nextTokenLogits(again, encode(text));
      again.dispose();
      return a.reduce((worst, v, i) => Math.max(worst, Math.abs(v - b[i]!)), 0);
    },
  };
  document.body.dataset.ready = 'true';
  await regenerate();
}

start().catch((e) => {
  status(`could not start: ${(e as Error).message}`, true);
  document.body.dataset.ready = 'failed';
});
