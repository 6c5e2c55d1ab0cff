// Runs the `primer` CLI from source (no build): `npm run primer:dev -- ARGS`.
import { main } from '@primer-search/cli';

const args = process.argv.slice(2);
process.exitCode = await main(args[0] === '--' ? args.slice(1) : args);
