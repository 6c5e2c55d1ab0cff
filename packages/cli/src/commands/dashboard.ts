import { existsSync } from 'node:fs';
import { dirname, extname } from 'node:path';
import { Option, type Command } from 'commander';
import { PrimerError, quote } from '@primer-search/core';
import { maskUrl, openStudyStore, type StudyStore } from '@primer-search/store';
import type { StudyConfig } from '@primer-search/study';
import { integer } from '../flags.js';
import { alignColumns } from '../format.js';
import { UsageError, writeWhole, type CliIo } from '../io.js';
import type { CommandResult } from './dna.js';
import { openForReading } from '../studies.js';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export function dashboardCommand(program: Command, io: CliIo, result: CommandResult): void {
  program
    .command('dashboard')
    .description(
      'Serve a live dashboard of a study in the browser: best perplexity so far, the population, validation curves, the lineage of the best, every program with its diffs, failures, hurdles, workers and a table of all candidates. ' +
        'It follows a running search (a new result appears within seconds) and never writes to the study. Ctrl-C stops it.',
    )
    .requiredOption('--study <study>', 'the study: a file, sqlite:///path or postgres://... (a file that does not exist yet is shown once a search creates it)')
    .option('--port <n>', 'port to listen on (0: any free one)', integer('--port', 0, 65535), 8790)
    .option('--host <address>', 'address to listen on; anything but 127.0.0.1 lets other machines see the study', '127.0.0.1')
    .addOption(
      new Option('--allow-host <name>', 'a host name the page may be asked for besides the listening address and localhost (e.g. this machine\'s name behind a proxy; repeatable). Other names are refused, so no web page can read the study through DNS rebinding')
        .argParser((v: string, prev: string[]) => [...prev, v])
        .default([], 'none'),
    )
    .action(async (o: { study: string; port: number; host: string; allowHost: string[] }) => {
      if (!LOOPBACK.has(o.host)) io.stderr(`warning: --host ${o.host}: the dashboard (read-only, no authentication) is reachable from other machines on that network\n`);
      const { startDashboard } = await import('@primer-search/dashboard');
      const dashboard = await startDashboard({ open: () => openStudyStore(o.study, { readonly: true, mustExist: true }), location: o.study, port: o.port, host: o.host, allowedHosts: o.allowHost }).catch((e: NodeJS.ErrnoException) => {
        // the machine's state, not the command line's fault: exit 1
        if (e.code === 'EADDRINUSE') throw new PrimerError('PORT_IN_USE', `--port ${o.port}: something else listens there; give another port (or 0 for any free one)`);
        if (e.code === 'EACCES') throw new PrimerError('PORT_DENIED', `--port ${o.port}: this user may not listen there (ports below 1024 need privileges); give another port`);
        if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') throw new UsageError(`--host ${o.host}: not an address of this machine`);
        throw e;
      });
      const problem = dashboard.problem();
      io.stderr(`dashboard of ${maskUrl(o.study)} at ${dashboard.url}${problem ? ` (for now it says: ${problem})` : ''} · Ctrl-C to stop\n`);
      await new Promise<void>((done) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          done();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await dashboard.close();
      result.exitCode = 0;
    });
}

export function reportCommand(study: Command, io: CliIo, result: CommandResult): void {
  study
    .command('report')
    .description(
      'Write the dashboard of a study as one self-contained HTML file (data, styles and scripts inlined: it opens offline), or its headline chart as SVG or PNG. ' +
        'Given several studies, draw them on one chart instead (SVG or PNG): each best perplexity so far against the training FLOPs its candidates spent, so searches compare at equal compute ' +
        '(a candidate stopped at a hurdle counts what it trained, a reused or refused one nothing), and print a table of what each spent and found, with each best within the least compute any of them spent.',
    )
    .argument('<study...>', 'the study: a file, sqlite:///path or postgres://... (several: a comparison)')
    .requiredOption('--out <file>', 'the file to write')
    .addOption(new Option('--format <format>', 'html, svg or png (default: from the --out extension, else html; a comparison: svg)').choices(['html', 'svg', 'png']))
    .option('--top <n>', 'best candidates whose programs (and lineages) the HTML report embeds', integer('--top', 1), 20)
    .option('--labels <list>', "with several studies: their names on the chart, comma-separated, in order (default: each study's strategy and seed)")
    .action(async (locations: string[], o: { out: string; format?: 'html' | 'svg' | 'png'; top: number; labels?: string }, command: Command) => {
      const ext = extname(o.out).slice(1).toLowerCase();
      const byExtension: Record<string, 'html' | 'svg' | 'png'> = { html: 'html', htm: 'html', svg: 'svg', png: 'png' };
      // a file is what its name says: report.pdf would be HTML under a PDF's name
      if (ext && !byExtension[ext]) throw new UsageError(`--out ${o.out}: study report writes HTML (.html), SVG (.svg) or PNG (.png), not .${ext}`);
      if (ext && o.format && byExtension[ext] !== o.format) throw new UsageError(`--out ${o.out} and --format ${o.format} disagree: name the file .${o.format}`);
      checkOutFolder(o.out);
      if (locations.length > 1) {
        const format = o.format ?? byExtension[ext] ?? 'svg';
        if (format === 'html') throw new UsageError(`a comparison of ${locations.length} studies is one chart: write it as SVG (.svg) or PNG (.png), not HTML; an HTML report is of one study`);
        if (command.getOptionValueSource('top') === 'cli') throw new UsageError('--top chooses the programs an HTML report of one study embeds; a comparison has none');
        await compareStudies(io, locations, o.out, format, o.labels);
        result.exitCode = 0;
        return;
      }
      if (o.labels !== undefined) throw new UsageError('--labels names the studies of a comparison: give it with several studies');
      const location = locations[0]!;
      const format = o.format ?? byExtension[ext] ?? 'html';
      const store = await openForReading(location);
      try {
        const { headlineChart, htmlReport } = await import('@primer-search/dashboard');
        const t0 = performance.now();
        const out =
          format === 'html'
            ? await htmlReport(store, { top: o.top, onProgress: (done, total) => total > 2000 && io.stderr(`  planning programs for FLOPs: ${done}/${total}\r`) })
            : await headlineChart(store, format);
        writeOut(o.out, out);
        io.stderr(`wrote ${o.out} (${format}, ${Math.round((typeof out === 'string' ? Buffer.byteLength(out) : out.byteLength) / 1024)} KiB, ${((performance.now() - t0) / 1000).toFixed(1)}s)\n`);
        result.exitCode = 0;
      } finally {
        await store.close();
      }
    });
}

/** --out in a folder that does not exist: said before any work (the command line's fault). */
function checkOutFolder(path: string): void {
  if (!existsSync(dirname(path))) throw new UsageError(`--out ${path}: cannot write it: its folder ${dirname(path)} does not exist`);
}

/**
 * Writes a report whole (a reader never finds half of it, and a failed write leaves the old one),
 * in one line when it cannot: a folder or a file it may not write is the
 * command line's fault (exit 2), anything else the machine's (a full disk: exit 1).
 */
function writeOut(path: string, data: string | Uint8Array): void {
  try {
    writeWhole(path, data);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UsageError(`--out ${path}: cannot write it: its folder ${dirname(path)} does not exist`);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EISDIR') throw new UsageError(`--out ${path}: cannot write it: ${code === 'EISDIR' ? 'it is a folder' : 'you may not write there'}`);
    throw new PrimerError('WRITE_FAILED', `--out ${path}: cannot write it: ${(e as Error).message}`);
  }
}

/** primer study report A B ...: the studies' best so far on one chart, and a table of what each spent and found. */
async function compareStudies(io: CliIo, locations: string[], out: string, format: 'svg' | 'png', labelList: string | undefined): Promise<void> {
  const labels = labelList?.split(',').map((x) => x.trim());
  if (labels && labels.length !== locations.length) throw new UsageError(`--labels names ${labels.length} stud${labels.length === 1 ? 'y' : 'ies'} (${labels.join(', ')}), but ${locations.length} are given`);
  if (labels?.some((l) => !l)) throw new UsageError('--labels: a label is empty');
  const twice = labels?.find((l, i) => labels.indexOf(l) !== i);
  if (twice !== undefined) throw new UsageError(`--labels: ${quote(twice)} names two studies; give each its own`);
  const stores: StudyStore[] = [];
  try {
    const studies: Array<{ store: StudyStore; label: string }> = [];
    for (const [i, location] of locations.entries()) {
      const store = await openForReading(location);
      stores.push(store);
      const config = (await store.config()) as StudyConfig | undefined;
      if (!config) throw new UsageError(`${maskUrl(location)} holds no study`);
      studies.push({ store, label: labels?.[i] ?? `${config.strategy} seed ${config.seed}` });
    }
    // two studies of the same strategy and seed: told apart by where they are (and by their place, given twice)
    const names = studies.map((s) => s.label);
    if (!labels) studies.forEach((s, i) => names.indexOf(s.label) !== names.lastIndexOf(s.label) && (s.label = `${s.label} (${maskUrl(locations[i]!)}${locations.indexOf(locations[i]!) !== i ? `, again` : ''})`));
    const { comparisonChart } = await import('@primer-search/dashboard');
    const { chart, rows, equalCompute: equal, warnings } = await comparisonChart(studies, format);
    writeOut(out, chart);
    const unknown = rows.some((r) => r.unknownCost > 0);
    const head = ['study', 'results', 'trained', 'training FLOPs', ...(unknown ? ['cost unknown'] : []), 'best', ...(equal === null ? [] : [`best within ${equal.toExponential(2)} FLOPs`])];
    const body = rows.map((r) => [
      r.label,
      String(r.candidates),
      String(r.trained),
      r.flops === null ? '-' : r.flops.toExponential(2),
      ...(unknown ? [String(r.unknownCost)] : []),
      r.best === null ? '-' : r.best.toFixed(3),
      ...(equal === null ? [] : [r.bestAtEqualCompute === null ? '-' : r.bestAtEqualCompute.toFixed(3)]),
    ]);
    io.stdout(`${alignColumns([head, ...body])}\n`);
    for (const w of warnings) io.stderr(`note: ${w}\n`);
    io.stderr(`wrote ${out} (${format}, ${Math.round((typeof chart === 'string' ? Buffer.byteLength(chart) : chart.byteLength) / 1024)} KiB): ${rows.length} studies\n`);
  } finally {
    for (const s of stores) await s.close();
  }
}
