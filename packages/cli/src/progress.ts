import cliProgress from 'cli-progress';
import type { ProgressEvent } from '@primer-search/trainer-gpu';
import type { CliIo } from './io.js';
import { terminalText } from './format.js';

export interface TrainingProgress {
  update(e: ProgressEvent): void;
  note(text: string): void;
  stop(): void;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/**
 * A line above a live progress bar: the bar's line cleared on the terminal (it redraws on its next
 * update), then the text through `io`, escaped and masked as everything the commands print.
 */
export function noteOverBar(io: CliIo, text: string): void {
  process.stderr.write('\r\x1b[K');
  io.stderr(`${text}\n`);
}

/** A live bar on a terminal; otherwise a line every 10% of the budget. */
export function trainingProgress(io: CliIo, label: string): TrainingProgress {
  if (io.interactive) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${terminalText(label)} {bar} {percentage}% | step {step} | loss {loss} | {tps} tok/s | ETA {eta_formatted}`,
        stream: process.stderr,
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(1000, 0, { step: 0, loss: '-', tps: '-' });
    return {
      update: (e) => bar.update(Math.round(e.progress * 1000), { step: e.step, loss: e.trainLoss.toFixed(3), tps: fmt(e.tokensPerSecond) }),
      note: (text) => noteOverBar(io, text),
      stop: () => bar.stop(),
    };
  }
  let nextTenth = 1;
  return {
    update: (e) => {
      if (e.progress * 10 >= nextTenth) {
        io.stderr(`${label} ${Math.floor(e.progress * 100)}% · step ${e.step} · loss ${e.trainLoss.toFixed(3)} · ${fmt(e.tokensPerSecond)} tok/s\n`);
        nextTenth = Math.floor(e.progress * 10) + 1;
      }
    },
    note: (text) => io.stderr(`${text}\n`),
    stop: () => {},
  };
}
