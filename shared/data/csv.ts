/**
 * Tabular classification data from a CSV file with a header row.
 *
 * - The label column is picked by header name, or by 0-based index given as digits
 *   (a header that is itself all digits wins over the index reading).
 * - Every other column must be numeric in every row.
 * - Class ids: distinct label strings sorted (numerically when all labels are numbers,
 *   else by code unit), kept as `classNames`.
 * - Deterministic shuffled split (seeded), then features min-max scaled per column with
 *   the TRAIN minimum and maximum; test values outside that range are clamped to [0,1].
 *   A column constant in train becomes 0.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parse } from 'csv-parse/sync';
import { createRng, shuffleInPlace } from '../random.ts';
import { DataError, type DataSplit, type Dataset } from './dataset.ts';

export interface CsvOptions {
  /** Fraction of rows held out as the test set; default 0.2. */
  readonly testFraction?: number;
  /** Seed of the split shuffle; default 0. */
  readonly seed?: number;
}

interface CsvRow {
  readonly record: string[];
  readonly info: { readonly lines: number };
}

function readRows(path: string): CsvRow[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DataError(
      path,
      code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? String(error)})`,
    );
  }
  try {
    // With `info: true` csv-parse yields { record, info } per row (its typings do not say so).
    return parse(text, { info: true, bom: true, trim: true, skip_empty_lines: true }) as unknown as CsvRow[];
  } catch (error) {
    throw new DataError(path, `not valid CSV: ${(error as Error).message}`);
  }
}

function findLabelColumn(path: string, header: readonly string[], label: string): number {
  const byName = header.indexOf(label);
  if (byName >= 0) return byName;
  if (/^\d+$/.test(label) && Number(label) < header.length) return Number(label);
  throw new DataError(path, `no label column "${label}"; columns are: ${header.join(', ')}`);
}

function sortLabels(labels: Iterable<string>): string[] {
  const distinct = [...new Set(labels)];
  const numeric = distinct.every((s) => s !== '' && Number.isFinite(Number(s)));
  return numeric ? distinct.sort((a, b) => Number(a) - Number(b)) : distinct.sort();
}

interface Scaling {
  readonly width: number;
  readonly min: Float64Array;
  readonly max: Float64Array;
}

/** Rows `rows` of `raw`, min-max scaled and clamped to [0,1]. */
function scaleRows(raw: Float64Array, rows: Int32Array, { width, min, max }: Scaling): Float32Array {
  const x = new Float32Array(rows.length * width);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    for (let j = 0; j < width; j++) {
      const range = max[j]! - min[j]!;
      const v = range > 0 ? (raw[row * width + j]! - min[j]!) / range : 0;
      x[i * width + j] = Math.min(1, Math.max(0, v));
    }
  }
  return x;
}

export function loadCsv(path: string, labelColumn: string, opts: CsvOptions = {}): DataSplit {
  const testFraction = opts.testFraction ?? 0.2;
  if (!(testFraction > 0 && testFraction < 1)) {
    throw new DataError(path, `test fraction ${testFraction} is not in (0,1)`);
  }
  const [headerRow, ...body] = readRows(path);
  if (!headerRow) throw new DataError(path, 'empty file (a header row is required)');
  const header = headerRow.record;
  const labelIndex = findLabelColumn(path, header, labelColumn);
  const featureColumns = header.map((_, j) => j).filter((j) => j !== labelIndex);
  const width = featureColumns.length;
  if (width === 0) throw new DataError(path, 'no feature columns besides the label');
  const n = body.length;
  const testCount = Math.round(n * testFraction);
  if (testCount < 1 || n - testCount < 1) {
    throw new DataError(path, `${n} data rows cannot be split into non-empty train and test sets`);
  }

  const raw = new Float64Array(n * width);
  const labelStrings: string[] = [];
  for (const [i, { record, info }] of body.entries()) {
    const where = `row ${i + 1} (line ${info.lines})`;
    const label = record[labelIndex] ?? '';
    if (label === '') throw new DataError(path, `${where}: empty label in column "${header[labelIndex]}"`);
    labelStrings.push(label);
    for (const [j, col] of featureColumns.entries()) {
      const cell = record[col] ?? '';
      const value = Number(cell);
      if (cell === '' || !Number.isFinite(value)) {
        throw new DataError(path, `${where}, column "${header[col]}": "${cell}" is not a number`);
      }
      raw[i * width + j] = value;
    }
  }
  const classNames = sortLabels(labelStrings);
  const classOf = new Map(classNames.map((s, k) => [s, k] as const));
  const y = Int32Array.from(labelStrings, (s) => classOf.get(s)!);

  const order = Int32Array.from({ length: n }, (_, i) => i);
  shuffleInPlace(order, createRng(opts.seed ?? 0));
  const testRows = order.slice(0, testCount);
  const trainRows = order.slice(testCount);

  const min = new Float64Array(width).fill(Infinity);
  const max = new Float64Array(width).fill(-Infinity);
  for (const row of trainRows) {
    for (let j = 0; j < width; j++) {
      const v = raw[row * width + j]!;
      if (v < min[j]!) min[j] = v;
      if (v > max[j]!) max[j] = v;
    }
  }
  const scaling = { width, min, max };
  const part = (suffix: string, rows: Int32Array): Dataset => ({
    name: `${basename(path)}/${suffix}`,
    n: rows.length,
    inputWidth: width,
    classes: classNames.length,
    x: scaleRows(raw, rows, scaling),
    y: Int32Array.from(rows, (row) => y[row]!),
    classNames,
  });
  return { train: part('train', trainRows), test: part('test', testRows) };
}
