import { createHash } from 'node:crypto';

/** Lowercase hex SHA-256: the name of every content-addressed blob. */
export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
