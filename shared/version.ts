import pkg from '../package.json' with { type: 'json' };

/** Arbor's release, shown by `--version` on both ends. */
export const ARBOR_VERSION: string = pkg.version;
