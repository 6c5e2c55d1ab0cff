// The test hook around the server of postgres-server.ts (which benches use without vitest).
import { afterAll, beforeAll } from 'vitest';
import { startPostgres, type TestPostgres } from './postgres-server.js';

export { startPostgres, type TestPostgres } from './postgres-server.js';

/** Starts a server before the tests of this file and stops it after them; call at the top of a test file. */
export function usePostgres(): () => TestPostgres {
  let server: TestPostgres | undefined;
  beforeAll(async () => {
    server = await startPostgres();
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error('the PostgreSQL server of this test file did not start');
    return server;
  };
}
