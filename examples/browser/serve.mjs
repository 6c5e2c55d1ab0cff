// Serves the page on 127.0.0.1: index.html, the bundle (dist/) and an exported model (/model/).
// Usage: node examples/browser/serve.mjs --model DIR [--port 8080]
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.md': 'text/markdown; charset=utf-8',
  '.png': 'image/png',
};

/** A file under `root` for a URL path, or undefined (never outside `root`). */
function under(root, path) {
  const file = normalize(join(root, decodeURIComponent(path)));
  if (file !== root && !file.startsWith(root + sep)) return undefined;
  return existsSync(file) && statSync(file).isFile() ? file : undefined;
}

/**
 * Starts the server; resolves to its URL and a close function. `port` 0 picks a free one.
 * @param {{ modelDir: string; distDir?: string; port?: number }} o
 */
export function servePage(o) {
  const model = resolve(o.modelDir);
  const dist = resolve(o.distDir ?? join(here, 'dist'));
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const file =
      path === '/' || path === '/index.html'
        ? join(here, 'index.html')
        : path.startsWith('/dist/')
          ? under(dist, path.slice('/dist/'.length))
          : path.startsWith('/model/')
            ? under(model, path.slice('/model/'.length))
            : undefined;
    if (!file || req.method !== 'GET') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(o.port ?? 0, '127.0.0.1', () => {
      const { port } = server.address();
      ok({ url: `http://127.0.0.1:${port}/`, close: () => new Promise((done) => server.close(() => done())) });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { model: { type: 'string' }, port: { type: 'string', default: '8080' }, help: { type: 'boolean' } } });
  if (values.help || !values.model) {
    console.log('usage: node examples/browser/serve.mjs --model DIR [--port 8080]\n  DIR: a model exported by primer train --save (e.g. --model models/primer-ez)');
    process.exit(values.help ? 0 : 2);
  }
  if (!existsSync(join(values.model, 'model.json'))) {
    console.error(`--model: ${values.model} has no model.json (export one: primer train --model primer-ez --budget 2m --save ${values.model})`);
    process.exit(2);
  }
  if (!existsSync(join(here, 'dist', 'app.js'))) {
    console.error('examples/browser/dist/app.js is missing: run node examples/browser/build.mjs first');
    process.exit(2);
  }
  const { url } = await servePage({ modelDir: values.model, port: Number(values.port) });
  console.log(`serving the page at ${url} with the model ${values.model} (Ctrl-C to stop)`);
}
