// Rendering of one run into the page. Every function is idempotent: it
// makes the page show the run as it is now, building DOM only when the
// run's shape (its ID, its folds) changes, so it can run after any burst of
// messages. Exact values sit in data-* attributes for tests and tools; the
// text shows them rounded.

import { METRICS, ACTIVE } from "./runs.js";
import { Chart, epochOpts, reliabilityOpts, forecastOpts, seriesOpts, foldColor } from "./charts.js";

const $ = (id) => document.getElementById(id);

// el makes an element with attributes (data-* and aria-* too) and children.
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  e.append(...children);
  return e;
}

// fmt rounds a metric for reading; null (NaN on the server) shows as "–".
export function fmt(v) {
  if (typeof v !== "number") return "–";
  if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

// exact is the data-value of a number: JavaScript's shortest round-trip
// form, which parses back to the very float the server sent.
const exact = (v) => (typeof v === "number" ? String(v) : "null");

const charts = {
  loss: new Chart($("chart-loss")),
  auc: new Chart($("chart-auc")),
  ece: new Chart($("chart-ece")),
  coverage: new Chart($("chart-coverage")),
  reliability: new Chart($("chart-reliability"), 260),
  forecast: new Chart($("chart-forecast"), 260),
  series: new Chart($("chart-series"), 280),
};

const epochCharts = [
  // chart, y label, metric keys (train first when two)
  ["loss", "loss", ["train_loss", "val_loss"]],
  ["auc", "validation AUC", ["val_auc"]],
  ["ece", "ECE", ["ECE"]],
  ["coverage", "conformal coverage", ["conformal_coverage"]],
];

const totalEpochs = (run) => (run.start ? run.start.total_epochs : 0);
const foldCount = (run) => Math.max(run.start ? run.start.total_folds : 0, run.folds.length);

// epochsDone is how many epochs of a fold have reported metrics.
const epochsDone = (f) => (f.last ? f.last.epoch + 1 : 0);

export function renderRun(run) {
  const main = $("main");
  main.dataset.runId = run ? run.id : "";
  main.dataset.runState = run ? run.state : "";
  main.dataset.epochMessages = run ? String(run.folds.reduce((n, f) => n + f.epochs.filter(Boolean).length, 0)) : "0";
  renderSummary(run);
  renderProgress(run);
  renderCurves(run);
  renderTable(run);
  renderTrials(run);
  renderReliability(run);
  renderNotes(run);
}

function renderSummary(run) {
  const p = $("run-summary");
  if (!run) {
    setText(p, "No run yet: start one above.");
    return;
  }
  const parts = [`${run.id}: ${run.state}`];
  const ds = run.request && run.request.dataset;
  if (ds) parts.push(`dataset ${ds}`);
  if (run.dataset) parts.push(`${run.dataset.size} samples`);
  if (run.start) {
    const cv = `${run.start.total_folds} folds × ${run.start.total_epochs} epochs`;
    parts.push(run.start.total_trials ? `tune: ${run.start.total_trials} trials of ${cv}` : cv);
    if (run.start.device) parts.push(`on ${run.start.device}`);
    if (run.start.dataset_hash) parts.push(`data ${run.start.dataset_hash.slice(0, 12)} (${run.start.dataset_rows} rows)`);
  }
  let text = parts.join(" · ");
  if (run.start && run.start.fallback_reason) text += ` (fell back to the CPU: ${run.start.fallback_reason})`;
  if (run.error) text += ` — ${run.error}`;
  setText(p, text);
  p.className = run.state === "failed" ? "error" : "";
}

// setText changes an element's text only when it differs: the run summary
// is a live region, and rewriting the same words may announce them again.
function setText(e, text) {
  if (e.textContent !== text) e.textContent = text;
}

function renderProgress(run) {
  const box = $("progress");
  const tune = run && run.start && run.start.total_trials;
  const folds = run && !tune ? foldCount(run) : 0;
  const key = run ? `${run.id}/${folds}/${tune ? "tune" : ""}` : "";
  if (box.dataset.key !== key) {
    box.dataset.key = key;
    box.replaceChildren();
    if (run) {
      box.append(progressRow("overall", tune ? "All trials" : "All folds", null));
      for (let i = 0; i < folds; i++) box.append(progressRow(`fold-${i}`, `Fold ${i + 1}`, i));
    }
  }
  if (!run) return;
  if (tune) {
    const done = run.trials.filter(Boolean).length;
    setProgress("overall", done, tune, `${done} / ${tune} trials${ACTIVE.has(run.state) ? "" : ` · ${run.state}`}`);
    return;
  }
  const total = totalEpochs(run);
  let done = 0;
  for (let i = 0; i < folds; i++) {
    const f = run.folds[i];
    const n = f ? epochsDone(f) : 0;
    let value = n;
    let text = total ? `${n} / ${total} epochs` : "waiting";
    if (f && f.complete) {
      value = total;
      text = n < total ? `done: stopped early after ${n} of ${total} epochs` : `done: ${n} epochs`;
    } else if (f && f.batch && f.batch.total_batches > 0) {
      value = n + f.batch.batch / f.batch.total_batches;
      text += `, batch ${f.batch.batch} / ${f.batch.total_batches}`;
    }
    done += value;
    setProgress(`fold-${i}`, value, total, text, f ? f.last && f.last.epoch : null);
  }
  const all = total * folds;
  const ended = run.state !== "queued" && run.state !== "running";
  setProgress("overall", run.state === "completed" ? all : done, all,
    all ? `${Math.round((100 * (run.state === "completed" ? all : done)) / all)}%${ended ? ` · ${run.state}` : ""}` : run.state);
}

function progressRow(id, label, fold) {
  const bar = el("progress", { id: `p-${id}`, "aria-labelledby": `pl-${id}`, "aria-describedby": `pt-${id}`, "data-fold": fold });
  return el("div", { class: "progress-row" },
    el("span", { id: `pl-${id}`, class: "progress-label", text: label }), bar,
    el("span", { id: `pt-${id}`, class: "progress-text" }));
}

function setProgress(id, value, max, text, epoch) {
  const bar = $(`p-${id}`);
  if (max > 0) {
    bar.max = max;
    bar.value = Math.min(value, max);
  } else {
    bar.removeAttribute("value"); // indeterminate until training_start
  }
  if (epoch !== undefined) bar.dataset.epoch = epoch === null ? "" : String(epoch);
  $(`pt-${id}`).textContent = text;
}

function renderCurves(run) {
  const folds = run ? foldCount(run) : 0;
  const n = run ? Math.max(totalEpochs(run), ...run.folds.map(epochsDone)) : 0;
  // Epochs are 0-indexed on the wire and counted from 1 on the page, as in
  // the progress bars and the table.
  const x = Array.from({ length: n }, (_, i) => i + 1);
  for (const [name, label, keys] of epochCharts) {
    const data = [x];
    for (let i = 0; i < folds; i++) {
      const f = run.folds[i];
      for (const k of keys) data.push(x.map((e) => (f && f.epochs[e - 1] && typeof f.epochs[e - 1][k] === "number" ? f.epochs[e - 1][k] : null)));
    }
    charts[name].update(`${run ? run.id : ""}/${folds}`, () => epochOpts(label, folds, keys.length === 2), data);
  }
}

function renderTable(run) {
  const body = $("metrics-body");
  const rows = [];
  for (const f of run ? run.folds : []) {
    if (!f.last) continue;
    const m = f.last;
    const tr = el("tr", { "data-fold": f.id, "data-epoch": m.epoch },
      el("th", { scope: "row" }, swatch(f.id), `Fold ${f.id + 1}`),
      el("td", { text: String(m.epoch + 1) }));
    for (const k of METRICS) tr.append(el("td", { "data-key": k, "data-value": exact(m[k]), text: fmt(m[k]) }));
    tr.append(el("td", { text: f.complete ? "done" : "training" }));
    rows.push(tr);
  }
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: METRICS.length + 3, text: "No epoch yet." })));
  body.replaceChildren(...rows);
}

// renderTrials lists a tune's trials, the best marked; exact values are in
// data-* attributes. The section shows only for a tune.
function renderTrials(run) {
  const trials = run ? run.trials.filter(Boolean) : [];
  $("trials-section").hidden = !(run && run.start && run.start.total_trials);
  const best = trials.length ? trials[trials.length - 1].best_trial : null;
  const rows = trials.map((m) => {
    const p = m.params;
    return el("tr", { "data-trial": m.trial, "data-value": exact(m.value), "data-state": m.state, class: m.trial === best ? "best" : "" },
      el("th", { scope: "row", text: String(m.trial) }),
      el("td", { text: p.lr.toExponential(2) }),
      el("td", { text: p.hidden.join(", ") }),
      el("td", { text: String(p.batch_size) }),
      el("td", { text: m.state === "complete" ? fmt(m.value) : "–" }),
      el("td", { text: m.trial === best ? "best" : m.state === "failed" ? `failed: ${m.error || ""}` : "" }));
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 6, text: "No trial yet." })));
  $("trials-body").replaceChildren(...rows);
}

function swatch(i) {
  const s = el("span", { class: "swatch", "aria-hidden": "true" });
  s.style.background = foldColor(i); // CSSOM, which the CSP allows
  return s;
}

function renderReliability(run) {
  const done = run ? run.folds.filter((f) => f.complete) : [];
  const withBins = done.filter((f) => f.reliability);
  const n = withBins.length ? withBins[0].reliability.length : 10;
  // Each bin is drawn at its rows' mean p_up_cal, as scikit-learn's
  // calibration_curve does; uPlot shares one x array, so it is the union
  // of every fold's points, with gaps where a fold has none.
  const x = [...new Set([0, 1, ...withBins.flatMap((f) => f.reliability.filter((b) => b.count).map((b) => b.predicted))])]
    .sort((a, b) => a - b);
  const at = new Map(x.map((v, i) => [v, i]));
  const data = [x, x.slice()];
  for (const f of withBins) {
    const ys = x.map(() => null);
    for (const b of f.reliability) if (b.count) ys[at.get(b.predicted)] = b.observed;
    data.push(ys);
  }
  charts.reliability.update(`${run ? run.id : ""}/${withBins.map((f) => f.id).join(",")}`,
    () => reliabilityOpts(withBins.map((f) => f.id)), data);
  $("reliability-empty").hidden = withBins.length > 0;

  renderReliabilityTable(withBins, n);

  const notes = $("fold-notes");
  notes.replaceChildren(...done.map((f) => {
    const c = f.complete;
    const rows = f.reliability ? f.reliability.reduce((s, b) => s + b.count, 0) : 0;
    const li = el("li", { "data-fold": f.id }, swatch(f.id),
      `Fold ${f.id + 1}: calibration ${c.calibration_method}` +
      (f.reliability ? `; diagram from ${f.reliabilityFinal ? "the final predictions, best epoch" : "the uncalibrated predictions of epoch"} ${f.reliabilityEpoch + 1}, ${rows} scored rows${f.reliabilityPartial ? " (some parts missing)" : ""}` : "; no predictions received"));
    for (const w of [c.calibration_warning, c.coverage_warning]) if (w) li.append(el("span", { class: "warning", text: ` ⚠ ${w}` }));
    return li;
  }));
}

// renderReliabilityTable gives the diagram's numbers: per bin and fold, the
// observed frequency of a rise and the number of rows.
function renderReliabilityTable(folds, n) {
  $("reliability-head").replaceChildren(el("th", { scope: "col", text: "p_up_cal bin" }),
    ...folds.map((f) => el("th", { scope: "col" }, swatch(f.id), `Fold ${f.id + 1}`)));
  const rows = [];
  for (let i = 0; folds.length && i < n; i++) {
    const b = folds[0].reliability[i];
    rows.push(el("tr", {}, el("th", { scope: "row", text: `${b.lo.toFixed(1)}–${b.hi.toFixed(1)}` }),
      ...folds.map((f) => {
        const c = f.reliability[i];
        return el("td", { "data-fold": f.id, "data-bin": i, "data-count": c.count, "data-observed": exact(c.observed), "data-predicted": exact(c.predicted),
          text: c.count ? `${fmt(c.observed)} (${c.count})` : "–" });
      })));
  }
  $("reliability-body").replaceChildren(...rows);
}

function renderNotes(run) {
  const list = $("notes");
  const notes = run ? run.notes : [];
  if (list.dataset.key === `${run && run.id}/${notes.length}/${notes.length && notes[notes.length - 1].seq}`) return;
  list.dataset.key = `${run && run.id}/${notes.length}/${notes.length && notes[notes.length - 1].seq}`;
  list.replaceChildren(...notes.slice().reverse().map((n) => el("li", { class: n.level === "warning" ? "warning" : "", text: n.message })));
  if (!notes.length) list.append(el("li", { class: "muted", text: "Nothing yet." }));
}

// renderForecast shows a Forecaster's state.
export function renderForecast(s) {
  const bar = $("forecast-progress");
  const status = $("forecast-status");
  $("forecast-section").dataset.status = s.status;
  $("forecast-section").dataset.forecastId = s.id || "";
  if (s.status === "running" && s.total > 0) {
    bar.max = s.total;
    bar.value = s.step;
  } else if (s.status === "running") {
    bar.removeAttribute("value");
  } else {
    bar.max = 1;
    bar.value = s.status === "done" ? 1 : 0;
  }
  const step = s.status === "running" && s.stepName ? ` (${s.stepName})` : "";
  status.textContent = s.status === "idle" ? "" : `${s.message || ""}${step}`;
  status.className = s.status === "error" ? "error" : "";
  $("forecast-go").disabled = s.status === "running";
  if (s.status !== "done") return;

  const days = s.payload;
  const x = days.map((d) => Date.parse(`${d.date}T00:00:00Z`) / 1000);
  const num = (v) => (v === null || v === undefined ? null : Number(v));
  charts.forecast.update(`${s.dataset}/${s.horizon}/${days.length}/${x[0]}`, () => forecastOpts(s.dataset),
    [x, days.map((d) => num(d.conf_low)), days.map((d) => num(d.conf_high)), days.map((d) => num(d.predicted_affluence))]);
  $("forecast-body").replaceChildren(...days.map((d) => el("tr", {
    "data-date": d.date, "data-predicted": exact(num(d.predicted_affluence)), "data-low": exact(num(d.conf_low)), "data-high": exact(num(d.conf_high)),
  },
    el("th", { scope: "row", text: d.date }),
    el("td", { text: String(d.predicted_affluence) }),
    el("td", { text: `${d.conf_low} – ${d.conf_high}` }),
    el("td", { text: d.confidence_score }),
    el("td", { text: fmt(d.p_up) }))));
}

// shortHash is the start of a content hash, enough to tell versions apart.
const shortHash = (h) => (h ? h.slice(0, 12) : "");

// seriesRows is how many of the last rows the Data panel's table lists.
const seriesRows = 5;

// renderSeries shows a SeriesView's dataset (state) with forecast, the
// last finished forecast, drawn after it when it is of the same dataset.
export function renderSeries(state, forecast) {
  const section = $("data-section");
  const info = $("ds-info");
  const d = section.dataset;
  d.dataset = state ? state.name : "";
  if (!state || state.error || state.loading) {
    d.rows = "0";
    d.hash = "";
    info.textContent = !state ? "No dataset." : state.loading ? `Loading ${state.name}…` : `${state.name}: ${state.error}`;
    info.className = state && state.error ? "error" : "";
    $("chart-series").hidden = !!(state && state.error);
    if (state && state.error) $("series-body").replaceChildren();
    return;
  }
  $("chart-series").hidden = false;
  const i = state.info;
  const rows = state.rows;
  const ohlcv = !!i.ohlcv;
  const target = i.target;
  d.rows = String(rows.length);
  d.hash = state.hash;
  d.last = rows.length ? rows[rows.length - 1].date : "";
  d.kind = ohlcv ? "candles" : "line";
  d.updates = String(state.updates || 0);
  const source = i.source === "embedded" ? "embedded, read-only" : `file ${i.file}`;
  info.className = "";
  info.textContent = `${state.name}: ${rows.length} rows, ${i.first} to ${d.last}, ${i.frequency}, ` +
    `${ohlcv ? "OHLCV, forecasts close" : `target ${target}`} · ${source} · version ${shortHash(state.hash)}`;

  const days = (r) => Date.parse(`${r}T00:00:00Z`) / 1000;
  const f = forecast && forecast.dataset === state.name && Array.isArray(forecast.payload) ? forecast.payload : [];
  d.forecastDays = String(f.length);
  d.forecastHash = f.length ? forecast.dataHash || "" : "";
  const x = rows.map((r) => days(r.date)).concat(f.map((p) => days(p.date)));
  const num = (v) => (v === null || v === undefined || v === "" ? null : Number(v));
  const pad = (a, n) => a.concat(new Array(n).fill(null));
  const history = ohlcv ? ["open", "high", "low", "close"] : [target];
  const data = [x, ...history.map((k) => pad(rows.map((r) => num(r[k])), f.length))];
  const before = new Array(rows.length).fill(null);
  for (const k of ["conf_low", "conf_high", "predicted_affluence"]) data.push(before.concat(f.map((p) => num(p[k]))));
  charts.series.update(`${state.name}/${ohlcv}/${target}`, () => seriesOpts(target, ohlcv), data);

  const cols = (i.columns || []).filter((c) => c !== "date");
  const head = $("series-head");
  const headKey = cols.join(",");
  if (head.dataset.key !== headKey) {
    head.dataset.key = headKey;
    head.replaceChildren(el("th", { scope: "col", text: "Date" }), ...cols.map((c) => el("th", { scope: "col", text: c })));
  }
  $("series-body").replaceChildren(...rows.slice(-seriesRows).reverse().map((r) => el("tr", { "data-date": r.date },
    el("th", { scope: "row", text: r.date }),
    ...cols.map((c) => el("td", { "data-key": c, "data-value": typeof r[c] === "number" ? String(r[c]) : r[c], text: typeof r[c] === "number" ? fmt(r[c]) : String(r[c] ?? "") })))));
}
