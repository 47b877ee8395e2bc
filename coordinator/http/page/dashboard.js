// The live dashboard: fetches the /v1 views, redraws them whenever the event stream
// reports a change (at most once a second) and every few seconds for the time estimate
// (every second while the coordinator pretrains, which reports progress only in /v1/status).
/* global uPlot */
'use strict';

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 50;
const PLOT_HEIGHT = 200;
const MIX_COLOURS = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];
const PRETRAINING_STAGES = { 'pretrain-soft': 'soft routing', 'pretrain-harden': 'hardening the routing' };
/** Class names of the datasets that have them; any other class is shown by its number. */
const CLASS_NAMES = {
  'fashion-mnist': [
    'T-shirt/top',
    'trouser',
    'pullover',
    'dress',
    'coat',
    'sandal',
    'shirt',
    'sneaker',
    'bag',
    'ankle boot',
  ],
  mnist: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
};
const className = (i) => {
  const names = CLASS_NAMES[(state.status?.data ?? '').split(/[:\s]/)[0]];
  return names?.[i] === undefined ? `class ${i}` : names[i] === String(i) ? `digit ${i}` : names[i];
};

const state = {
  workerOffset: 0,
  selected: new Set(),
  galleryShown: '',
  legendClasses: 0,
  plots: {},
  status: null,
};

const classColour = (i) =>
  i < MIX_COLOURS.length ? MIX_COLOURS[i] : `hsl(${Math.round((i * 137.5) % 360)} 55% 50%)`;

const pct = (x) => (x === null || x === undefined ? '–' : `${(x * 100).toFixed(2)}%`);
const num = (x) => (x === null || x === undefined ? '–' : x.toLocaleString('en'));
const bytes = (n) =>
  n >= 1e9
    ? `${(n / 1e9).toFixed(2)} GB`
    : n >= 1e6
      ? `${(n / 1e6).toFixed(1)} MB`
      : n >= 1e3
        ? `${(n / 1e3).toFixed(1)} kB`
        : `${Math.round(n)} B`;
const ago = (ms, now) => {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
};
const duration = (s) =>
  s === null
    ? 'estimating…'
    : s < 1
      ? 'done'
      : s < 90
        ? `${Math.round(s)} s left`
        : s < 5400
          ? `${Math.round(s / 60)} min left`
          : `${(s / 3600).toFixed(1)} h left`;
const el = (tag, attrs = {}, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};

// A coordinator started with --read-token is opened as /?token=…; the token goes with every read.
const readToken = new URLSearchParams(location.search).get('token');

async function getJson(path) {
  const headers = readToken ? { authorization: `Bearer ${readToken}` } : {};
  const response = await fetch(path, { cache: 'no-store', headers });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function renderStatus(s) {
  state.status = s;
  // A finished job needs no more volunteers.
  $('join').hidden = s.phase === 'done';
  $('job').textContent =
    `${s.data} · depth ${s.model.depth}, ${s.model.frozen} frozen levels (${2 ** s.model.frozen} shards), leaf ${s.model.leaf}`;
  $('phase').textContent = s.paused && s.phase === 'training' ? 'paused' : s.phase;
  $('phase').className = `badge ${s.phase}`;
  const pretraining = s.phase === 'pretraining' ? s.pretraining : null;
  const fraction = s.phase === 'pretraining' ? (pretraining?.fraction ?? 0) : s.progress.fraction;
  $('progress-bar').style.width = `${(fraction * 100).toFixed(1)}%`;
  $('progress-bar').classList.toggle('pretraining', s.phase === 'pretraining');
  $('progress-text').textContent =
    s.phase === 'done'
      ? 'finished'
      : s.phase === 'training'
        ? `${pct(s.progress.fraction)} · ${duration(s.progress.eta_s)}`
        : pretraining
          ? `pretraining epoch ${pretraining.epoch} of ${pretraining.epochs} · ${Math.floor(pretraining.fraction * 100)}%`
          : `${s.phase}…`;
  const treeWaiting = document.querySelector('#tree > .empty');
  if (treeWaiting && pretraining)
    treeWaiting.textContent =
      `the coordinator is pretraining the top ${s.model.frozen} levels of the tree ` +
      `(epoch ${pretraining.epoch} of ${pretraining.epochs}); the shards appear once the samples are routed`;
  $('acc').textContent = pct(s.accuracy.hard_test_acc);
  if (s.accuracy.central_hard_test_acc !== null)
    $('acc').title = `central twin: ${pct(s.accuracy.central_hard_test_acc)}`;
  $('val-loss').textContent = s.accuracy.val_loss === null ? '–' : s.accuracy.val_loss.toFixed(4);
  $('workers-connected').textContent = num(s.workers.connected);
  const alone = s.workers.none_since_ms === null ? 0 : (s.now_ms - s.workers.none_since_ms) / 1000;
  $('alone').hidden = !(s.phase === 'training' && alone >= 60);
  $('alone').textContent =
    `No volunteers for ${Math.round(alone / 60)} min: training waits until one connects.`;
  $('accepted').textContent = num(s.results.accepted);
  $('rejected').textContent = num(s.results.rejected);
  const share = (x) => `${Math.round(x * 100)}%`;
  $('crowd').textContent =
    `${share(s.crowd.utilization)} · ${share(s.crowd.idle_fraction)} · ${share(s.crowd.wasted_fraction)}`;
  $('units').textContent =
    `${num(s.units.ready ?? 0)} · ${num(s.units.leased ?? 0)} · ${num(s.units.accepted ?? 0)}`;
  $('comm').textContent =
    s.traffic.comm_reduction === null ? '–' : `${Math.round(s.traffic.comm_reduction).toLocaleString('en')}x`;
  $('imbalance').textContent = s.routing_imbalance === null ? '–' : s.routing_imbalance.toFixed(2);
  const traffic = $('traffic');
  traffic.replaceChildren();
  for (const [k, v] of [
    ['model bytes (weights + deltas)', bytes(s.traffic.model_bytes)],
    ['data bytes (shard blobs)', bytes(s.traffic.data_bytes)],
    ['model bytes per sample', s.traffic.bytes_per_sample.toFixed(2)],
    ['data-parallel would move', `${s.traffic.dp_bytes_per_sample.toFixed(0)} bytes per sample`],
    [
      'units by state',
      Object.entries(s.units)
        .map(([k2, v2]) => `${k2} ${v2}`)
        .join(', '),
    ],
  ])
    traffic.append(el('dt', {}, k), el('dd', {}, v));
}

/** The width of `container`'s content box, which a chart fills. */
function plotWidth(container) {
  const style = getComputedStyle(container);
  return Math.floor(container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight));
}

function plot(id, title, series, values, reference) {
  const container = $(id);
  if (values.length === 0) return;
  const xs = values.map((v) => v.at_ms / 1000);
  const data = [xs, values.map((v) => v[series])];
  const lines = [{}, { label: title, stroke: '#1565c0', width: 2, points: { show: true } }];
  if (reference !== null && reference !== undefined) {
    data.push(xs.map(() => reference));
    lines.push({ label: 'central twin', stroke: '#c62828', dash: [6, 4], width: 1.5 });
  }
  const key = `${id}:${lines.length}`;
  const existing = state.plots[id];
  if (existing && existing.key === key) return existing.plot.setData(data);
  if (existing) existing.plot.destroy();
  container.replaceChildren();
  const options = {
    width: plotWidth(container),
    height: PLOT_HEIGHT,
    series: lines,
    axes: [{ space: 70 }, { size: 60 }],
    // uPlot spreads a single point over a thousand days of axis: two minutes around it instead.
    scales: {
      x: {
        range: (u, min, max) =>
          u.data[0].length === 1 ? [u.data[0][0] - 60, u.data[0][0] + 60] : [min, max],
      },
    },
  };
  state.plots[id] = { key, plot: new uPlot(options, data, container) };
}

const plotResizer = new ResizeObserver(() => {
  for (const [id, { plot }] of Object.entries(state.plots)) {
    const width = plotWidth($(id));
    if (width !== plot.width) plot.setSize({ width, height: PLOT_HEIGHT });
  }
});

/** Slow top: the size of each node's latest update, by node. */
let topUpdates = new Map();

function drawTree(frozen) {
  const levels = Math.min(frozen, 5);
  const leaves = 2 ** levels;
  const width = Math.max(320, Math.min(1200, leaves * 40));
  const rowHeight = 26;
  const svgNs = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(svgNs, 'svg');
  const height = levels * rowHeight + 12;
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const x = (level, index) => ((index + 0.5) * width) / 2 ** level;
  for (let level = 0; level < levels; level++)
    for (let i = 0; i < 2 ** level; i++) {
      const cy = level * rowHeight + 8;
      for (const child of [2 * i, 2 * i + 1]) {
        const line = document.createElementNS(svgNs, 'line');
        line.setAttribute('x1', String(x(level, i)));
        line.setAttribute('y1', String(cy));
        line.setAttribute('x2', String(x(level + 1, child)));
        line.setAttribute('y2', String(cy + rowHeight));
        line.setAttribute('stroke', '#999');
        svg.append(line);
      }
      const node = document.createElementNS(svgNs, 'circle');
      node.setAttribute('cx', String(x(level, i)));
      node.setAttribute('cy', String(cy));
      node.setAttribute('r', '5');
      node.setAttribute('fill', '#455a64');
      const update = topUpdates.get(2 ** level - 1 + i);
      if (update !== undefined) {
        const title = document.createElementNS(svgNs, 'title');
        title.textContent = `node ${update.node}: last update ${update.size.toPrecision(3)} (top v${update.version})`;
        node.append(title);
        node.setAttribute('r', String(Math.min(11, 5 + 20 * update.size)));
        node.setAttribute('fill', '#ef6c00');
        node.setAttribute('data-update', String(update.size));
        const label = document.createElementNS(svgNs, 'text');
        label.setAttribute('x', String(x(level, i) + 12));
        label.setAttribute('y', String(cy + 4));
        label.setAttribute('font-size', '10');
        label.textContent = update.size.toPrecision(2);
        svg.append(label);
      }
      svg.append(node);
    }
  return svg;
}

function renderShards(view) {
  const tree = $('tree');
  if (view.shards.length === 0) return;
  const dense = view.shards.length > 32;
  const mean = view.shards.reduce((a, s) => a + s.samples, 0) / view.shards.length;
  $('tree-note').textContent =
    `(${view.frozen} frozen levels, ${view.shards.length} shards; ${dense ? 'hover a box for details' : 'box border colour = health'})`;
  const grid = el('div', { class: `shards${dense ? ' dense' : ''}`, id: 'shards' });
  for (const s of view.shards) {
    const box = el('div', {
      class: `shard ${s.health}${state.selected.has(s.id) ? ' selected' : ''}`,
      'data-shard': String(s.id),
      'data-version': String(s.version),
    });
    const details =
      `shard ${s.id}: ${num(s.samples)} samples (${(s.samples / mean).toFixed(2)}x ideal), version ${s.version}, ${s.in_flight} in flight, staleness ${s.mean_staleness === null ? '–' : s.mean_staleness.toFixed(2)}, ` +
      `val loss ${s.val_loss === null ? '–' : s.val_loss.toFixed(3)}, ${s.accepted} merged / ${s.rejected} rejected, ${pct(s.trained_samples / Math.max(1, s.budget_samples))} of budget, ${s.health}`;
    box.title = details;
    if (!dense) {
      box.append(
        el('b', {}, `#${s.id}`),
        el('div', {}, `${num(s.samples)} samples`),
        el(
          'div',
          {},
          `v${s.version} · ${s.in_flight} in flight · stale ${s.mean_staleness === null ? '–' : s.mean_staleness.toFixed(1)}`,
        ),
        el('div', {}, `val ${s.val_loss === null ? '–' : s.val_loss.toFixed(3)}`),
        el('div', {}, `✓ ${s.accepted} ✗ ${s.rejected}`),
      );
    }
    box.addEventListener('click', () => {
      if (state.selected.has(s.id)) state.selected.delete(s.id);
      else state.selected.add(s.id);
      refresh();
    });
    grid.append(box);
  }
  tree.replaceChildren(drawTree(view.frozen), grid);
  renderMixLegend(view.shards[0].class_mix.length);
  renderGallery(view);
}

/** Which colour of the class-mix bars is which class (classes are known by index only). */
function renderMixLegend(classes) {
  if (classes === state.legendClasses) return;
  state.legendClasses = classes;
  const legend = $('mix-legend');
  legend.replaceChildren(
    el('span', { class: 'legend-title' }, 'class mix:'),
    ...Array.from({ length: classes }, (_, i) => {
      const swatch = el('i', { class: 'swatch' });
      swatch.style.background = classColour(i);
      const item = el('span', { class: 'legend-item', 'data-class': String(i) });
      item.append(swatch, className(i));
      return item;
    }),
  );
  legend.hidden = false;
}

async function renderGallery(view) {
  const chosen =
    state.selected.size > 0 ? view.shards.filter((s) => state.selected.has(s.id)) : view.shards.slice(0, 8);
  const key = chosen.map((s) => s.id).join(',');
  if (key === state.galleryShown) return;
  state.galleryShown = key;
  const cards = await Promise.all(
    chosen.map(async (s) => {
      const card = el('div', { class: 'shard-gallery', 'data-shard': String(s.id) });
      card.append(el('b', {}, `shard ${s.id} `), el('small', {}, `${num(s.samples)} samples`), el('br'));
      const samples = await getJson(`/v1/shards/${s.id}/samples`);
      for (const image of samples.images) {
        if (samples.width === 0) break;
        const canvas = el('canvas', {
          width: String(samples.width),
          height: String(samples.height),
          title: className(image.label),
        });
        const ctx = canvas.getContext('2d');
        const pixels = atob(image.pixels);
        const img = ctx.createImageData(samples.width, samples.height);
        for (let i = 0; i < pixels.length; i++) {
          const v = 255 - pixels.charCodeAt(i);
          img.data.set([v, v, v, 255], i * 4);
        }
        ctx.putImageData(img, 0, 0);
        card.append(canvas);
      }
      const total = s.class_mix.reduce((a, b) => a + b, 0) || 1;
      const mix = el('div', {
        class: 'mix',
        title: s.class_mix.map((c, i) => `${className(i)}: ${c}`).join(', '),
      });
      s.class_mix.forEach((c, i) => {
        const bar = el('span', { title: `${className(i)}: ${num(c)}` });
        bar.style.width = `${(100 * c) / total}%`;
        bar.style.background = classColour(i);
        mix.append(bar);
      });
      card.append(mix);
      return card;
    }),
  );
  $('gallery').replaceChildren(...cards);
}

/** A table wider than the screen scrolls sideways: say so beside it, and only then. */
function showScrollHints() {
  for (const box of document.querySelectorAll('.table-scroll')) {
    const hint = box.nextElementSibling;
    if (hint?.classList.contains('scroll-hint')) hint.hidden = box.scrollWidth <= box.clientWidth + 1;
  }
}
addEventListener('resize', showScrollHints);

function renderWorkers(view, now) {
  const body = $('workers').tBodies[0];
  $('workers-note').textContent = `(${num(view.total)} in all, by credit)`;
  if (view.workers.length === 0) return;
  body.replaceChildren(
    ...view.workers.map((w, i) => {
      const row = el('tr', { 'data-worker': w.id });
      const cells = [
        String(view.offset + i + 1),
        `${w.name}${w.token_name !== null && w.token_name !== w.name ? ` (${w.token_name})` : ''}${w.connected ? '' : ' (offline)'}`,
        w.backend,
        w.samples_per_s === null ? '–' : `${Math.round(w.samples_per_s).toLocaleString('en')}/s`,
        num(w.units_done),
        num(w.credit),
        num(w.rejections),
        ago(w.last_seen_ms, now),
        w.standing,
      ];
      cells.forEach((c, j) => row.append(el('td', j === 8 ? { class: w.standing } : {}, c)));
      return row;
    }),
  );
  showScrollHints();
  $('page').textContent = `${view.offset + 1}–${view.offset + view.workers.length} of ${view.total}`;
  $('prev').disabled = view.offset === 0;
  $('next').disabled = view.offset + view.workers.length >= view.total;
}

function renderSeries(series, status) {
  const reference = status ? status.accuracy.central_hard_test_acc : null;
  plot('plot-acc', 'hard test accuracy', 'hard_test_acc', series.evals, reference);
  plot('plot-loss', 'validation loss', 'val_loss', series.evals, null);
  if (series.top) {
    $('top-plots').hidden = false;
    topUpdates = new Map(series.top.last_update.map((u) => [u.node, u]));
    $('top-note').textContent =
      `(slow top: ${series.top.updates} updates, ${series.top.dropped} dropped, ${series.top.routing_version} re-routes)`;
    plot('plot-migrated', 'samples migrated', 'migrated', series.top.reroutes, null);
    plot('plot-imbalance', 'routing imbalance', 'imbalance', series.top.reroutes, null);
  }
  if (series.rejections.length > 0)
    $('rejections').replaceChildren(
      ...series.rejections
        .slice(-20)
        .reverse()
        .map((r) =>
          el('li', {}, `${new Date(r.at_ms).toLocaleTimeString()} ${r.unit} from ${r.worker}: ${r.reason}`),
        ),
    );
}

let pending = null;
async function refresh() {
  try {
    const [status, shards, workers, series] = await Promise.all([
      getJson('/v1/status'),
      getJson('/v1/shards'),
      getJson(`/v1/workers?offset=${state.workerOffset}&limit=${PAGE_SIZE}`),
      getJson('/v1/series'),
    ]);
    renderStatus(status);
    renderShards(shards);
    renderWorkers(workers, status.now_ms);
    renderSeries(series, status);
    document.body.dataset.updated = String(Date.now());
  } catch (error) {
    console.warn('refresh failed', error);
  }
}
function scheduleRefresh() {
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    refresh();
  }, 1000);
}

function describe(event) {
  const d = event.data || {};
  const parts =
    event.kind === 'pretraining'
      ? [`epoch ${d.epoch} of ${d.epochs}`, PRETRAINING_STAGES[d.phase] ?? d.phase]
      : [
          d.name ?? d.worker,
          d.unit,
          d.shard !== undefined ? `shard ${d.shard}` : undefined,
          Array.isArray(d.units) ? `${d.units.length} units` : undefined,
          d.phase,
          d.reason,
          d.hard_test_acc !== undefined ? `acc ${pct(d.hard_test_acc)}` : undefined,
        ];
  const text = parts.filter((p) => p !== undefined).join(' · ');
  return `${new Date(event.at_ms).toLocaleTimeString()} ${event.kind} ${text}`;
}

function listen() {
  const source = new EventSource(
    readToken ? `/v1/events?token=${encodeURIComponent(readToken)}` : '/v1/events',
  );
  source.onopen = () => $('live').classList.add('on');
  source.onerror = () => $('live').classList.remove('on');
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    const list = $('events');
    const worker = event.data?.worker;
    list.prepend(el('li', worker === undefined ? {} : { title: `worker ${worker}` }, describe(event)));
    while (list.children.length > 50) list.lastChild.remove();
    scheduleRefresh();
  };
}

$('prev').addEventListener('click', () => {
  state.workerOffset = Math.max(0, state.workerOffset - PAGE_SIZE);
  refresh();
});
$('next').addEventListener('click', () => {
  state.workerOffset += PAGE_SIZE;
  refresh();
});
/** The same command as proto/dashboard.ts joinCommand, for the address this page was loaded from. */
async function showJoinCommand() {
  try {
    const join = await getJson('/v1/join');
    const base = location.origin;
    const script =
      `fetch('${base}/v1/worker/join.mjs').then(r=>r.text())` +
      `.then(s=>import('data:text/javascript,'+encodeURIComponent(s)))` +
      `.catch(e=>{console.error('arbor: '+(e.cause??e).message);process.exit(1)})`;
    $('join-command').textContent =
      join.package_path === null
        ? `the volunteer worker is not available: ${join.error}`
        : `node -e "${script}" -- --url ${base.replace(/^http/, 'ws')}` +
          (join.token_required && !join.enrolment ? ' --token YOUR_TOKEN' : '');
  } catch (error) {
    console.warn('join command unavailable', error);
  }
}

async function refreshForever() {
  await refresh();
  setTimeout(refreshForever, state.status?.phase === 'pretraining' ? 1000 : 5000);
}

plotResizer.observe($('plot-acc'));
plotResizer.observe($('plot-loss'));
refreshForever();
listen();
showJoinCommand();
$('copy-join').addEventListener('click', async () => {
  const command = $('join-command').textContent ?? '';
  try {
    await navigator.clipboard.writeText(command);
    $('copy-join').textContent = 'Copied';
  } catch {
    // No clipboard off a secure origin: select the command for the volunteer to copy.
    getSelection()?.selectAllChildren($('join-command'));
  }
});
