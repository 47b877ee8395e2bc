import type { DataSplit } from '../../shared/data/dataset.ts';
import { loadData } from '../../shared/data/load.ts';
import type { JobConfig } from './config.ts';

/** The dataset a job names. */
export function loadJobData(config: JobConfig): Promise<DataSplit> {
  return loadData(config.data, {
    ...(config.data_dir !== undefined ? { dataDir: config.data_dir } : {}),
    ...(config.label !== undefined ? { label: config.label } : {}),
    seed: config.seed,
  });
}
