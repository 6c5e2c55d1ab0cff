import { PrimerError } from '@primer-search/core';

/** A study that cannot be opened, read or written: names the study, says what is wrong and what to do. */
export class StoreError extends PrimerError {
  constructor(message: string) {
    super('STORE', message);
  }
}
