import { InputError } from '../../shared/input-error.ts';

/** The database cannot be opened or locked; `source` is its path. */
export class DatabaseError extends InputError {
  readonly code = 'DB_UNAVAILABLE' as const;
}
