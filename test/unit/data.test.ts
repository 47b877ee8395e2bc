import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { loadCsv } from '../../shared/data/csv.ts';
import { DataError, type Dataset, subset, validateDataset } from '../../shared/data/dataset.ts';
import { loadIdxDirectory, readIdxImages, readIdxLabels } from '../../shared/data/idx.ts';
import { DATA_SPECS_HELP, loadData } from '../../shared/data/load.ts';
import { loadEmbeddedMnist } from '../../shared/data/mnist-embedded.ts';

const tmp = mkdtempSync(join(tmpdir(), 'arbor-data-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let dirCounter = 0;
const freshDir = (): string => {
  const dir = join(tmp, `d${dirCounter++}`);
  mkdirSync(dir);
  return dir;
};

/** IDX bytes: 00 00 <dtype> <rank>, big-endian u32 dims, data. */
function idx(dims: number[], data: Uint8Array, dtype = 0x08): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out.set([0, 0, dtype, dims.length]);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

const pixels = (n: number, seed: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i * 37 + seed) % 256);

function writeIdxDir(dir: string, opts: { gzip: boolean; trainN?: number; trainLabels?: number }): void {
  const write = (name: string, bytes: Uint8Array): void =>
    writeFileSync(join(dir, opts.gzip ? `${name}.gz` : name), opts.gzip ? gzipSync(bytes) : bytes);
  const trainN = opts.trainN ?? 6;
  const trainLabels = opts.trainLabels ?? trainN;
  write('train-images-idx3-ubyte', idx([trainN, 4, 3], pixels(trainN * 12, 1)));
  write(
    'train-labels-idx1-ubyte',
    idx(
      [trainLabels],
      Uint8Array.from({ length: trainLabels }, (_, i) => i % 10),
    ),
  );
  write('t10k-images-idx3-ubyte', idx([3, 4, 3], pixels(36, 2)));
  write('t10k-labels-idx1-ubyte', idx([3], Uint8Array.from([9, 0, 5])));
}

function assertDataError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof DataError, `expected DataError, got ${String(error)}`);
    assert.equal(error.code, 'DATA_INVALID');
    for (const p of patterns) assert.match(error.message, p);
    return true;
  });
}

void describe('IDX files', () => {
  for (const gzip of [false, true]) {
    void it(`round-trip ${gzip ? 'gzipped' : 'plain'} files through loadIdxDirectory`, () => {
      const dir = freshDir();
      writeIdxDir(dir, { gzip });
      const { train, test } = loadIdxDirectory(dir, 'tiny');
      validateDataset(train);
      assert.equal(train.n, 6);
      assert.equal(test.n, 3);
      assert.equal(train.inputWidth, 12);
      assert.deepEqual(train.imageShape, [4, 3]);
      assert.deepEqual([...test.y], [9, 0, 5]);
      assert.deepEqual([...train.y], [0, 1, 2, 3, 4, 5]);
      const raw = pixels(36, 2);
      for (let i = 0; i < raw.length; i++) assert.equal(test.x[i], Math.fround(raw[i]! / 255));
    });
  }

  void it('reads images and labels directly', () => {
    const path = join(freshDir(), 'imgs');
    writeFileSync(path, idx([2, 2, 2], Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 255])));
    const images = readIdxImages(path);
    assert.deepEqual({ n: images.n, rows: images.rows, cols: images.cols }, { n: 2, rows: 2, cols: 2 });
    assert.deepEqual([...images.pixels], [0, 1, 2, 3, 4, 5, 6, 255]);
    const labels = join(freshDir(), 'labels.gz');
    writeFileSync(labels, gzipSync(idx([3], Uint8Array.from([7, 8, 9]))));
    assert.deepEqual([...readIdxLabels(labels)], [7, 8, 9]);
  });

  void it('report a missing file, naming it', () => {
    const missing = join(tmp, 'nope-images');
    assertDataError(() => readIdxImages(missing), new RegExp(`^${missing}: file not found`));
    const dir = freshDir();
    writeIdxDir(dir, { gzip: false });
    rmSync(join(dir, 't10k-labels-idx1-ubyte'));
    assertDataError(() => loadIdxDirectory(dir, 'x'), new RegExp(`^${dir}: missing t10k-labels-idx1-ubyte`));
    assertDataError(
      () => loadIdxDirectory(join(tmp, 'no-such-dir'), 'x'),
      /no-such-dir: directory not found/,
    );
  });

  void it('report a truncated file', () => {
    const path = join(freshDir(), 'trunc');
    writeFileSync(path, idx([10, 28, 28], new Uint8Array(100)));
    assertDataError(
      () => readIdxImages(path),
      new RegExp(`^${path}: truncated: dims 10x28x28 need 7840 data bytes, file has 100`),
    );
    writeFileSync(path, Uint8Array.from([0, 0, 8, 3, 0, 0]));
    assertDataError(() => readIdxImages(path), /truncated: 6 bytes, header needs 16/);
    writeFileSync(path, gzipSync(idx([10], new Uint8Array(10))).subarray(0, 15));
    assertDataError(() => readIdxLabels(path), /corrupt gzip/);
  });

  void it('report a bad magic, an unsupported dtype and trailing bytes', () => {
    const path = join(freshDir(), 'bad');
    writeFileSync(path, Buffer.from('hello world, not idx at all'));
    assertDataError(() => readIdxImages(path), new RegExp(`^${path}: bad magic 0x68656c6c`));
    writeFileSync(path, idx([4], new Uint8Array(4)));
    assertDataError(() => readIdxImages(path), /bad magic: rank 1, expected 0x00000803/);
    writeFileSync(path, idx([1], new Uint8Array(4), 0x0d));
    assertDataError(() => readIdxLabels(path), /unsupported IDX dtype 0x0d \(float32\)/);
    writeFileSync(path, idx([2], new Uint8Array(5)));
    assertDataError(() => readIdxLabels(path), /3 trailing bytes/);
  });

  void it('report an image/label count mismatch', () => {
    const dir = freshDir();
    writeIdxDir(dir, { gzip: true, trainN: 6, trainLabels: 5 });
    assertDataError(
      () => loadIdxDirectory(dir, 'x'),
      /train-images-idx3-ubyte\.gz: count mismatch: 6 images but 5 labels/,
    );
  });
});

function classCounts(ds: Dataset): number[] {
  const counts = new Array<number>(ds.classes).fill(0);
  for (const label of ds.y) counts[label]!++;
  return counts;
}

function pixelRange(ds: Dataset): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (const v of ds.x) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

const FASHION = '/usr/share/datasets/fashion-mnist';

void describe('real datasets', () => {
  void it('loads Fashion-MNIST', { skip: existsSync(FASHION) ? false : `${FASHION} absent` }, async () => {
    const { train, test } = await loadData('fashion-mnist', {});
    assert.equal(train.n, 60000);
    assert.equal(test.n, 10000);
    assert.equal(train.inputWidth, 784);
    assert.deepEqual(train.imageShape, [28, 28]);
    assert.equal(train.classNames?.[9], 'Ankle boot');
    assert.deepEqual(classCounts(train), new Array(10).fill(6000));
    assert.deepEqual(classCounts(test), new Array(10).fill(1000));
    assert.deepEqual(pixelRange(train), [0, 1]);
    assert.deepEqual(pixelRange(test), [0, 1]);
  });

  void it('loads the embedded MNIST with its documented, deterministic split', async () => {
    const { train, test } = await loadData('mnist', {});
    assert.equal(train.n, 8000);
    assert.equal(test.n, 2000);
    assert.equal(train.inputWidth, 784);
    assert.equal(train.classes, 10);
    assert.deepEqual(test.imageShape, [28, 28]);
    assert.deepEqual(classCounts(test), new Array(10).fill(200));
    for (const c of classCounts(train)) assert.ok(c >= 600 && c <= 1000, `train class count ${c}`);
    assert.deepEqual(
      [...train.y.subarray(0, 20)],
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    const [min, max] = pixelRange(train);
    assert.ok(min === 0 && max === 1);
    const again = loadEmbeddedMnist();
    assert.deepEqual(again.test.y, test.y);
    assert.deepEqual(again.train.x.subarray(0, 784 * 50), train.x.subarray(0, 784 * 50));
  });
});

void describe('CSV', () => {
  // code = 0 / 5 / 10 for setosa / versicolor / virginica, so scaled code * 2 is the class id.
  const species = ['setosa', 'virginica', 'versicolor'] as const;
  const code = { setosa: 0, versicolor: 5, virginica: 10 } as const;
  const rows = Array.from(
    { length: 50 },
    (_, i) => `${i},${100 - 2 * i},${species[i % 3]},${code[species[i % 3]!]},7`,
  );
  const goodPath = join(tmp, 'iris.csv');
  writeFileSync(goodPath, `a,b,species,code,const\n${rows.join('\n')}\n\n`);

  void it('loads a good file: classes sorted, train min-max scaled, deterministic split', () => {
    const { train, test } = loadCsv(goodPath, 'species', { seed: 5 });
    assert.equal(train.n, 40);
    assert.equal(test.n, 10);
    assert.equal(train.inputWidth, 4);
    assert.deepEqual(train.classNames, ['setosa', 'versicolor', 'virginica']);
    validateDataset(train);
    validateDataset(test);
    for (const part of [train, test]) {
      for (let i = 0; i < part.n; i++) {
        const [a, b, c, k] = [0, 1, 2, 3].map((j) => part.x[i * 4 + j]!) as [number, number, number, number];
        assert.ok(a >= 0 && a <= 1 && b >= 0 && b <= 1);
        assert.ok(Math.abs(a + b - 1) < 1e-6, 'b decreases exactly as a increases');
        assert.equal(part.y[i], c * 2, 'label matches its row');
        assert.equal(k, 0, 'constant column maps to 0');
      }
    }
    assert.deepEqual(
      [...classCounts(train)].map((n, k) => n + classCounts(test)[k]!),
      [17, 16, 17],
    );
    const trainA = Array.from({ length: train.n }, (_, i) => train.x[i * 4]!);
    assert.equal(Math.min(...trainA), 0);
    assert.equal(Math.max(...trainA), 1);
    const same = loadCsv(goodPath, 'species', { seed: 5 });
    assert.deepEqual(same.test.x, test.x);
    const other = loadCsv(goodPath, '2', { seed: 6, testFraction: 0.5 });
    assert.equal(other.test.n, 25);
    assert.notDeepEqual(other.train.y.subarray(0, 10), train.y.subarray(0, 10));
  });

  void it('sorts numeric labels numerically', () => {
    const path = join(tmp, 'numeric.csv');
    writeFileSync(path, `x,label\n${Array.from({ length: 12 }, (_, i) => `${i},${i % 11}`).join('\n')}\n`);
    const { train } = loadCsv(path, 'label');
    assert.deepEqual(train.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
  });

  void it('rejects a non-numeric cell, naming file, row and column', () => {
    const path = join(tmp, 'bad-cell.csv');
    writeFileSync(path, 'a,b,label\n1,2,x\n3,4,y\n5,oops,x\n');
    assertDataError(
      () => loadCsv(path, 'label'),
      new RegExp(`^${path}: row 3 \\(line 4\\), column "b": "oops" is not a number`),
    );
  });

  void it('rejects a missing label column and a csv spec without a label', async () => {
    assertDataError(
      () => loadCsv(goodPath, 'kind'),
      /no label column "kind"; columns are: a, b, species, code, const/,
    );
    await assert.rejects(
      loadData(`csv:${goodPath}`, {}),
      (e: unknown) => e instanceof DataError && /needs the label column/.test(e.message),
    );
    const split = await loadData(`csv:${goodPath}`, { label: 'species' });
    assert.equal(split.train.classes, 3);
  });
});

void describe('specs and helpers', () => {
  void it('rejects an unknown spec, listing the accepted forms', async () => {
    await assert.rejects(
      loadData('cifar', {}),
      (e: unknown) =>
        e instanceof DataError &&
        e.message.startsWith('cifar: unknown dataset spec') &&
        e.message.includes(DATA_SPECS_HELP),
    );
    assert.match(DATA_SPECS_HELP, /idx:DIR/);
  });

  void it('loads idx:DIR', async () => {
    const dir = freshDir();
    writeIdxDir(dir, { gzip: true });
    assert.equal((await loadData(`idx:${dir}`, {})).train.n, 6);
  });

  void it('subset copies rows; validateDataset catches bad labels and lengths', () => {
    const ds: Dataset = {
      name: 'toy',
      n: 3,
      inputWidth: 2,
      classes: 2,
      x: Float32Array.from([0, 0.1, 0.2, 0.3, 0.4, 0.5]),
      y: Int32Array.from([0, 1, 0]),
    };
    const sub = subset(ds, Int32Array.from([2, 0]));
    assert.deepEqual([...sub.x], [...Float32Array.from([0.4, 0.5, 0, 0.1])]);
    assert.deepEqual([...sub.y], [0, 0]);
    sub.x[0] = 1;
    assert.equal(ds.x[4], Math.fround(0.4));
    assertDataError(
      () => validateDataset({ ...ds, y: Int32Array.from([0, 2, 0]) }),
      /^toy: label 2 of sample 1 is outside \[0, 2\)/,
    );
    assertDataError(() => validateDataset({ ...ds, n: 4 }), /x has 6 values/);
    assert.throws(() => subset(ds, Int32Array.from([3])), RangeError);
  });
});
