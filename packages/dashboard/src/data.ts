import { planBlock } from '@primer-search/compiler';
import { formatDna, type Dna } from '@primer-search/dna';
import { summarizeStudy, type StudyConfig, type StudySummary } from '@primer-search/runner/controller';
import type { CandidateView, StudyStore } from '@primer-search/store';
import { failureCategory } from '@primer-search/study';
import { structuredPatch } from 'diff';
import { queryTable as query } from '../static/query.js';

export type PointStatus = 'completed' | 'hurdle' | 'failed' | 'pending';
export const STATUS_CODES: PointStatus[] = ['completed', 'hurdle', 'failed', 'pending'];


/**
 * Every candidate as columns (one array per field, index = position in proposal order): what
 * the charts and the table read. Compact, so a 20,000-candidate study is one small response.
 */
export interface Points {
  id: number[];
  parent: Array<number | null>;
  /** Index into STATUS_CODES. */
  status: number[];
  reused: boolean[];
  /**
   * The candidate whose result it reused because its block computes the same function (behaviour
   * de-duplication), or null: like `reused`, it was not trained.
   */
  sameAs: Array<number | null>;
  /** Validation perplexity (at the end, or at the hurdle where it stopped); null when failed or pending. */
  fitness: Array<number | null>;
  parameters: Array<number | null>;
  /** Forward FLOPs per token of one block, from the compiler's plan at the study's sizes; null where it does not plan. */
  flops: Array<number | null>;
  /** Seconds from the study's first candidate to this candidate's result (null while pending). */
  seconds: Array<number | null>;
  steps: Array<number | null>;
  /** The failure category (failed only). */
  reason: Array<string | null>;
  /** Its mutations, in words. */
  mutations: string[];
}

/** One candidate in full: what the page shows when it is selected. */
export interface CandidateDetail {
  id: number;
  hash: string;
  parent: number | null;
  status: PointStatus;
  reused: boolean;
  /** The candidate whose result it reused because its block computes the same function, or null. */
  sameAs: number | null;
  mutations: string[];
  evaluation: CandidateView['evaluation'];
  /** Its program as code. */
  code: string;
  /** Unified diffs of its code against the seed's and its parent's ('' when the same). */
  diffSeed: string;
  diffParent: string;
  /** Ids from the seed to it. */
  lineage: number[];
}

/** A table query: sorted by a column, filtered by status and by text in its mutations, one page. */
export interface TableQuery {
  offset?: number;
  limit?: number;
  sort?: 'id' | 'fitness' | 'parameters' | 'flops' | 'steps' | 'seconds';
  order?: 'asc' | 'desc';
  status?: PointStatus | '';
  text?: string;
}

const body = (d: Dna) => formatDna(d).split('\n').slice(1).join('\n');

function unified(a: string, b: string, from: string, to: string): string {
  const patch = structuredPatch(from, to, a, b, '', '', { context: 2 });
  return patch.hunks.map((h) => `@@ ${from} line ${h.oldStart} @@\n${h.lines.join('\n')}`).join('\n');
}

/**
 * A read-only view of a study, kept in memory and refreshed from the store: the summary, the
 * points, details on demand. `version` changes whenever the study does.
 */
export class StudyData {
  summary!: StudySummary;
  points!: Points;
  version = 0;
  private candidates: CandidateView[] = [];
  private byId = new Map<number, CandidateView>();
  private flopsByHash = new Map<string, number | null>();
  private codeByHash = new Map<string, string>();
  private signature = '';
  /** The first candidate of each program with a result (what a same-function result points at). */
  private firstByHash = new Map<string, number>();

  private constructor(private readonly store: StudyStore) {}

  static async load(store: StudyStore): Promise<StudyData> {
    const d = new StudyData(store);
    await d.refresh();
    return d;
  }

  get location(): string {
    return this.store.location;
  }

  get config(): StudyConfig {
    return this.summary.config;
  }

  /**
   * Reads the study again if it changed (by the store's change token where it has one; else by
   * reading it whole), and plans up to `flopsMs` milliseconds of the programs whose FLOPs are
   * not known yet. Returns whether anything the page shows changed.
   */
  async refresh(flopsMs = 200): Promise<boolean> {
    const token = this.store.changeToken ? await this.store.changeToken() : undefined;
    let changed = false;
    if (token === undefined || token !== this.signature) {
      const candidates = await this.store.candidates();
      const signature = token ?? candidates.map((c) => `${c.id}:${c.told ? 1 : 0}:${c.evaluation?.id ?? ''}`).join(',');
      if (signature !== this.signature) {
        const evaluations = await this.store.evaluations();
        this.summary = await summarizeStudy(this.store, 20, { candidates, evaluations });
        this.candidates = candidates;
        this.byId = new Map(candidates.map((c) => [c.id, c]));
        this.points = this.pointsOf(candidates);
        this.signature = signature;
        changed = true;
      }
    }
    if (this.planFlops(flopsMs)) changed = true;
    if (changed) this.version++;
    return changed;
  }

  /** Whether every program's FLOPs are known (they are planned a little at each refresh). */
  get flopsComplete(): boolean {
    return this.candidates.every((c) => this.flopsByHash.has(c.hash));
  }

  /** Plans programs whose FLOPs are unknown for up to `ms` milliseconds (Infinity: all); fills the points. Returns whether any were. */
  planFlops(ms: number): boolean {
    const t0 = performance.now();
    let any = false;
    this.candidates.forEach((c, i) => {
      if (this.flopsByHash.has(c.hash)) {
        this.points.flops[i] = this.flopsByHash.get(c.hash)!;
        return;
      }
      if (performance.now() - t0 > ms) return;
      let flops: number | null = null;
      try {
        flops = planBlock(c.dna, { dModel: this.config.settings.dModel, seqLen: this.config.settings.seqLen }).estimate.forwardFlopsPerToken;
      } catch {
        // a program that does not plan (e.g. a plugin's primitive not loaded here)
      }
      this.flopsByHash.set(c.hash, flops);
      this.points.flops[i] = flops;
      any = true;
    });
    return any;
  }

  private flopsOf(c: CandidateView): number | null {
    return this.flopsByHash.get(c.hash) ?? null;
  }

  private pointsOf(candidates: CandidateView[]): Points {
    const start = candidates.length ? Date.parse(candidates[0]!.createdAt) : 0;
    const p: Points = { id: [], parent: [], status: [], reused: [], sameAs: [], fitness: [], parameters: [], flops: [], seconds: [], steps: [], reason: [], mutations: [] };
    this.firstByHash = new Map();
    for (const c of candidates) if (c.evaluation && !this.firstByHash.has(c.hash)) this.firstByHash.set(c.hash, c.id);
    for (const c of candidates) {
      const e = c.evaluation;
      const status: PointStatus = e ? e.status : 'pending';
      p.id.push(c.id);
      p.parent.push(c.parent);
      p.status.push(STATUS_CODES.indexOf(status));
      p.reused.push(c.reused);
      p.sameAs.push(this.sameAsOf(c));
      p.fitness.push(e && e.status !== 'failed' ? e.fitness : null);
      p.parameters.push(e?.parameters ?? null);
      p.flops.push(this.flopsOf(c));
      p.seconds.push(e ? Math.max(0, (Date.parse(e.finishedAt) - start) / 1000) : null);
      p.steps.push(e?.steps ?? null);
      p.reason.push(e?.status === 'failed' ? failureCategory(e.reason ?? '') : null);
      p.mutations.push((c.mutations as Array<{ description?: string }>).map((m) => m.description ?? JSON.stringify(m)).join('; '));
    }
    return p;
  }

  private sameAsOf(c: CandidateView): number | null {
    const of = c.evaluation?.sameAs;
    return of ? (this.firstByHash.get(of) ?? null) : null;
  }

  private code(c: CandidateView): string {
    let code = this.codeByHash.get(c.hash);
    if (code === undefined) {
      try {
        code = body(c.dna as Dna);
      } catch (e) {
        code = `(the program cannot be shown: ${(e as Error).message})`;
      }
      this.codeByHash.set(c.hash, code);
    }
    return code;
  }

  /** One candidate in full, or undefined when the study has no such id. */
  detail(id: number): CandidateDetail | undefined {
    const c = this.byId.get(id);
    if (!c) return undefined;
    const seed = this.byId.get(0);
    const parent = c.parent === null ? undefined : this.byId.get(c.parent);
    const code = this.code(c);
    const lineage: number[] = [];
    for (let at: CandidateView | undefined = c; at && !lineage.includes(at.id); at = at.parent === null ? undefined : this.byId.get(at.parent)) lineage.unshift(at.id);
    return {
      id: c.id,
      hash: c.hash,
      parent: c.parent,
      status: c.evaluation ? c.evaluation.status : 'pending',
      reused: c.reused,
      sameAs: this.sameAsOf(c),
      mutations: (c.mutations as Array<{ description?: string }>).map((m) => m.description ?? JSON.stringify(m)),
      evaluation: c.evaluation,
      code,
      diffSeed: seed && seed !== c ? unified(this.code(seed), code, 'seed', `candidate ${c.id}`) : '',
      diffParent: parent ? unified(this.code(parent), code, `parent ${parent.id}`, `candidate ${c.id}`) : '',
      lineage,
    };
  }

  /** Rows of the candidates table: one page of the sorted, filtered candidates, and how many match. */
  table(q: TableQuery): { total: number; rows: Array<Record<string, unknown>> } {
    return queryTable(this.points, q);
  }
}

/** The table query over points (the page runs the same code on a report's embedded points). */
export const queryTable: (p: Points, q: TableQuery) => { total: number; rows: Array<Record<string, unknown>> } = query as never;
