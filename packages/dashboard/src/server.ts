import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { hostname, networkInterfaces } from 'node:os';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { maskUrl, parseStudyLocation, redactSecrets, unpackedStudyFile, type StudyStore } from '@primer-search/store';
import { StudyData, STATUS_CODES, type TableQuery } from './data.js';

/** The page's own files (next to src/ and dist/ alike). */
export const STATIC_DIR = fileURLToPath(new URL('../static/', import.meta.url));
const UPLOT_DIR = join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
/** What the server sends besides the API: its own files and uPlot's, by URL path. Nothing else on disk is reachable. */
const FILES: Record<string, string> = {
  '/': join(STATIC_DIR, 'index.html'),
  '/app.js': join(STATIC_DIR, 'app.js'),
  '/query.js': join(STATIC_DIR, 'query.js'),
  '/style.css': join(STATIC_DIR, 'style.css'),
  '/vendor/uPlot.esm.js': join(UPLOT_DIR, 'uPlot.esm.js'),
  '/vendor/uPlot.min.css': join(UPLOT_DIR, 'uPlot.min.css'),
};
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

export interface DashboardOptions {
  /** Opens the study read-only: called at start and, while it fails (no study there yet, a file that is not one), at every poll. */
  open(): Promise<StudyStore>;
  /** The study's location, for messages: shown masked; errors quoting it are redacted (`redactSecrets`) where they come in. */
  location: string;
  port?: number;
  host?: string;
  /** How often the study is read again, in milliseconds (default 1000). */
  pollMs?: number;
  /**
   * Host names (or addresses) the page may be asked for besides the listening address and
   * loopback's names, e.g. a name of this machine that other machines use. Any other Host
   * header is refused, so a web page cannot read the study through a name rebound to 127.0.0.1.
   */
  allowedHosts?: string[];
}

/** Who may load what: the page's own scripts and the API, nothing inline, nothing from elsewhere. */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

/** The host name of a Host header, lower case, without its port or an IPv6 address's brackets. */
export function hostOfHeader(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.trim().toLowerCase();
  const m = h.startsWith('[') ? /^\[([^\]]+)\](?::\d+)?$/.exec(h) : /^([^:]+)(?::\d+)?$/.exec(h);
  return m?.[1]?.replace(/\.$/, '');
}

/**
 * The host names the dashboard answers to: loopback's, the listening address, `extra`, and
 * where it listens on every address (0.0.0.0, ::), this machine's addresses and name.
 */
export function allowedHostNames(listen: string, extra: string[] = []): Set<string> {
  const name = (h: string) => h.trim().toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  const out = new Set([...LOOPBACK_NAMES, ...extra, listen].map(name));
  const bound = name(listen);
  if (bound === '0.0.0.0' || bound === '::') {
    out.add(hostname().toLowerCase());
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address.toLowerCase());
  }
  return out;
}

export interface Dashboard {
  url: string;
  /** The study as shown, once it could be read. */
  data(): StudyData | undefined;
  /** Why the study cannot be shown, while it cannot. */
  problem(): string | undefined;
  close(): Promise<void>;
}

/** The page shown instead of the dashboard when the study cannot be read: what is wrong, no stack trace. */
export function errorPage(title: string, message: string): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><link rel="icon" href="data:,"></head><body style="font:16px system-ui;max-width:44rem;margin:3rem auto"><h1>${esc(title)}</h1><p id="error">${esc(message)}</p></body></html>`;
}

/**
 * Serves the dashboard of a study: the page, its JSON API and a server-sent event stream that
 * says when the study changed. Never writes to the study.
 */
export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  const location = maskUrl(o.location);
  // (a location it cannot parse is the first open's problem, shown on the page)
  const gzipped = (() => {
    try {
      const where = parseStudyLocation(o.location);
      return where.kind === 'sqlite' && unpackedStudyFile(where.target) !== undefined;
    } catch {
      return false;
    }
  })();
  let data: StudyData | undefined;
  let store: StudyStore | undefined;
  let problem: string | undefined;
  const attach = async () => {
    try {
      store = await o.open();
      data = await StudyData.load(store);
      problem = undefined;
    } catch (e) {
      // a driver's or library's message may quote a URL whole: redacted where it comes in (the location itself is shown masked)
      problem = redactSecrets((e as Error).message);
      await store?.close().catch(() => undefined);
      store = undefined;
    }
  };
  await attach();
  const clients = new Set<ServerResponse>();
  const send = (event: string, body: unknown) => clients.forEach((c) => c.write(`event: ${event}\ndata: ${JSON.stringify(body)}\n\n`));
  let polling = false;
  const timer = setInterval(async () => {
    if (polling) return;
    polling = true;
    try {
      if (!data) {
        // a gzipped study is read whole and never written: what failed once fails again (and each try unpacks it)
        if (gzipped) return;
        await attach();
        if (data) send('update', (data as StudyData).version);
      } else if (await data.refresh()) send('update', data.version);
    } catch (e) {
      send('problem', redactSecrets((e as Error).message));
    } finally {
      polling = false;
    }
  }, o.pollMs ?? 1000);
  const heartbeat = setInterval(() => clients.forEach((c) => c.write(': alive\n\n')), 15_000);

  const json = (res: ServerResponse, body: unknown, status = 200) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
  };
  const hosts = allowedHostNames(o.host ?? '127.0.0.1', o.allowedHosts);
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('content-security-policy', CONTENT_SECURITY_POLICY);
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    // DNS rebinding: a page elsewhere that points its own name at this address is refused
    const asked = hostOfHeader(req.headers.host);
    if (asked === undefined || !hosts.has(asked)) {
      return void res
        .writeHead(403, { 'content-type': 'text/plain; charset=utf-8' })
        .end(`refused: the host ${JSON.stringify(req.headers.host ?? '')} is not a name this dashboard answers for (it answers for its own address and localhost; primer dashboard --allow-host NAME adds a name)\n`);
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (req.method !== 'GET') return json(res, { error: 'read-only: only GET' }, 405);
    if (!data && (path === '/' || path === '/index.html' || path.startsWith('/api/'))) {
      const message = `${location} cannot be shown: ${problem}. The page will show it once it can be read (it is checked every second).`;
      if (path.startsWith('/api/')) return json(res, { error: message }, 503);
      return void res.writeHead(503, { 'content-type': 'text/html; charset=utf-8', refresh: '2' }).end(errorPage('No study to show', message));
    }
    if (data && path.startsWith('/api/')) return api(data, path, url, req, res);
    const file = FILES[path === '/index.html' ? '/' : path];
    if (!file || !existsSync(file)) return void res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}\n`);
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    createReadStream(file).pipe(res);
  };
  const api = (data: StudyData, path: string, url: URL, req: IncomingMessage, res: ServerResponse) => {
    if (path === '/api/study') return json(res, { version: data.version, location: maskUrl(data.location), summary: data.summary, statuses: STATUS_CODES, flopsComplete: data.flopsComplete });
    // the mutations are the table's (served from here): the charts do without them
    if (path === '/api/points') return json(res, { version: data.version, points: { ...data.points, mutations: undefined } });
    if (path === '/api/candidates') {
      const q = url.searchParams;
      const num = (k: string) => (q.has(k) ? Number(q.get(k)) : undefined);
      return json(res, data.table({ offset: num('offset'), limit: num('limit'), sort: (q.get('sort') ?? undefined) as TableQuery['sort'], order: (q.get('order') ?? undefined) as TableQuery['order'], status: (q.get('status') ?? '') as TableQuery['status'], text: q.get('text') ?? '' }));
    }
    const m = /^\/api\/candidate\/(\d+)$/.exec(path);
    if (m) {
      const d = data.detail(Number(m[1]));
      return d ? json(res, d) : json(res, { error: `the study has no candidate ${m[1]}` }, 404);
    }
    if (path === '/api/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(`event: hello\ndata: ${data.version}\n\n`);
      clients.add(res);
      req.on('close', () => clients.delete(res));
      return;
    }
    json(res, { error: `no such API: ${path}` }, 404);
  };
  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      json(res, { error: redactSecrets((e as Error).message) }, 500);
    }
  });
  try {
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(o.port ?? 8790, o.host ?? '127.0.0.1', () => ok());
    });
  } catch (e) {
    // nothing left running (a busy port must not leave a process that never exits)
    clearInterval(timer);
    clearInterval(heartbeat);
    await store?.close().catch(() => undefined);
    throw e;
  }
  const address = server.address() as { port: number; address: string; family: string };
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/`,
    data: () => data,
    problem: () => problem,
    close: async () => {
      clearInterval(timer);
      clearInterval(heartbeat);
      for (const c of clients) c.end();
      await new Promise<void>((done) => server.close(() => done()));
      await store?.close();
    },
  };
}

/** A file of the page (for the report, which inlines them). */
export function pageFile(path: '/app.js' | '/query.js' | '/style.css' | '/vendor/uPlot.esm.js' | '/vendor/uPlot.min.css' | '/'): string {
  return readFileSync(FILES[path]!, 'utf8');
}

