/**
 * What a checkpoint was trained on, kept in its metadata, so that `arbor eval` can test it
 * on the same data without being told.
 */
export interface DataProvenance {
  /** The `--data` spec: mnist, fashion-mnist, idx:DIR, csv:PATH. */
  readonly spec: string;
  readonly dataDir?: string;
  readonly label?: string;
  /** The seed of the split (CSV data is shuffled into train and test). */
  readonly seed?: number;
}

export function provenanceMetadata(p: DataProvenance): Record<string, string> {
  return {
    data: p.spec,
    ...(p.dataDir !== undefined ? { data_dir: p.dataDir } : {}),
    ...(p.label !== undefined ? { data_label: p.label } : {}),
    ...(p.seed !== undefined ? { data_seed: String(p.seed) } : {}),
  };
}

export function provenanceFrom(metadata: Readonly<Record<string, string>>): DataProvenance | undefined {
  const spec = metadata['data'];
  if (spec === undefined || spec === '') return undefined;
  const seed = Number(metadata['data_seed']);
  return {
    spec,
    ...(metadata['data_dir'] !== undefined ? { dataDir: metadata['data_dir'] } : {}),
    ...(metadata['data_label'] !== undefined ? { label: metadata['data_label'] } : {}),
    ...(Number.isInteger(seed) ? { seed } : {}),
  };
}
