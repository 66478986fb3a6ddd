// The dashboard's entry point: it follows /ws, keeps the runs' state, and
// wires the controls to the REST API. Rendering is in view.js, the /ws
// client in stream.js, the /ws/predict client in forecast.js.

import * as api from "./api.js";
import { TrainingStream } from "./stream.js";
import { Runs, ACTIVE } from "./runs.js";
import { renderRun, renderForecast, renderSeries, el } from "./view.js";
import { Forecaster } from "./forecast.js";
import { SeriesView } from "./series.js";

const $ = (id) => document.getElementById(id);

const runs = new Runs();
let selected = ""; // the run shown
let pinned = false; // the user picked it: do not jump to newer runs

// A replay delivers thousands of messages at once; render at most every
// renderEvery ms, not once per message.
const renderEvery = 100;
let renderTimer = 0;
function schedule() {
  if (!renderTimer) renderTimer = setTimeout(render, renderEvery);
}

function render() {
  renderTimer = 0;
  const run = selected ? runs.get(selected) : null;
  // A run that ended before this page connected: /ws sends only runs in
  // progress, so read its history on its own.
  if (run && !ACTIVE.has(run.state) && run.state !== "lost" && run.messages === 0) stream.fetchRun(run.id);
  renderRunSelect();
  renderRun(run);
  $("cancel").disabled = !run || !ACTIVE.has(run.state);
}

function renderRunSelect() {
  const sel = $("run-select");
  const list = runs.list();
  const label = (r) => `${r.id} · ${(r.request && r.request.dataset) || (r.dataset && r.dataset.dataset) || "default"} · ${r.state}`;
  const key = list.map(label).join("|") + `>${selected}`;
  if (sel.dataset.key === key) return; // rebuilding would disturb a user choosing
  sel.dataset.key = key;
  if (!list.length) return;
  sel.replaceChildren(...list.slice().reverse().map((r) => el("option", { value: r.id, text: label(r) })));
  sel.value = selected;
}

function show(id, byUser) {
  selected = id;
  pinned = byUser;
  schedule();
}

function notice(text, isError = false) {
  const p = $("notice");
  p.textContent = text;
  p.className = isError ? "error" : "";
}

// Run states only the API knows (queued, cancelled) are refreshed from it
// at connection and whenever a run ends.
async function refreshRuns() {
  try {
    const before = new Set(runs.byId.keys());
    runs.listed(await api.listRuns(), before);
    if (!selected || !pinned) {
      const list = runs.list();
      if (list.length) selected = list[list.length - 1].id;
    }
    schedule();
  } catch (err) {
    notice(`Could not list the runs: ${err.message}`, true);
  }
}

const series = new SeriesView((state) => {
  renderSeries(state, series.forecast);
  // The picker says the rows the dataset has now.
  const opt = state && !state.error && !state.loading && $("ds-select").querySelector(`option[value="${state.name}"]`);
  if (opt) opt.textContent = `${state.name} (${state.rows.length} rows${state.info.source === "embedded" ? ", embedded" : ""})`;
});

const stream = new TrainingStream({
  onChart(msg) {
    series.chart(msg);
  },
  onMessage(msg) {
    const isNew = !runs.byId.has(msg.run_id);
    runs.apply(msg);
    if (isNew && !pinned) selected = msg.run_id; // follow the newest run
    if (msg.type === "training_complete" || msg.type === "training_error") refreshRuns();
    schedule();
  },
  onState(state, d) {
    const conn = $("conn");
    conn.dataset.state = state;
    switch (state) {
      case "connecting":
        conn.textContent = "Connecting…";
        break;
      case "open":
        conn.textContent = "Live";
        refreshRuns();
        series.resync(); // chart_updates sent while away are not replayed
        break;
      case "closed":
        conn.textContent = `Disconnected${d.code && d.code !== 1006 ? ` (${d.code}${d.reason ? ` ${d.reason}` : ""})` : ""}; reconnecting in ${Math.ceil(d.delay / 1000)} s…`;
        break;
      case "gap":
        notice(`Messages ${d.from}–${d.to} of ${d.run_id} are missing: the server no longer keeps them.`);
        break;
    }
  },
});

// runRequest reads the form into a POST /api/runs body; empty fields are
// left out, so the server's defaults apply.
function runRequest(form) {
  const f = new FormData(form);
  const req = {};
  for (const k of ["folds", "epochs", "patience", "batch_size", "seed"]) {
    const v = String(f.get(k) || "").trim();
    if (v !== "") req[k] = Number(v);
  }
  const lr = String(f.get("lr") || "").trim();
  if (lr !== "") req.lr = Number(lr);
  const hidden = String(f.get("hidden") || "").trim();
  if (hidden !== "") req.hidden = hidden.split(",").map((w) => Number(w.trim()));
  for (const k of ["dataset", "device", "on_oom"]) {
    const v = String(f.get(k) || "");
    if (v !== "") req[k] = v;
  }
  return req;
}

$("run-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  if (!form.reportValidity()) return;
  const start = $("start");
  start.disabled = true;
  try {
    const info = await api.startRun(runRequest(form));
    runs.info(info);
    show(info.run_id, false);
    notice(`Started run ${info.run_id}.`);
  } catch (err) {
    notice(`Could not start the run: ${err.message}`, true);
  } finally {
    start.disabled = false;
  }
});

$("cancel").addEventListener("click", async () => {
  const id = selected;
  if (!id) return;
  try {
    await api.cancelRun(id);
    notice(`Cancelling run ${id}…`);
  } catch (err) {
    notice(`Could not cancel run ${id}: ${err.message}`, true);
  }
});

$("run-select").addEventListener("change", (ev) => {
  const list = runs.list();
  // Choosing the newest run means "follow new runs" again.
  show(ev.target.value, list.length > 0 && ev.target.value !== list[list.length - 1].id);
});

const forecaster = new Forecaster((s) => {
  renderForecast(s);
  if (s.status === "done") series.forecasted(s);
});
$("forecast-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (!ev.target.reportValidity()) return;
  forecaster.start($("fc-dataset").value, $("fc-horizon").value);
});

// datasets is the last GET /api/datasets, by name; a file of the folder
// that does not load is listed too, with its error.
let datasets = new Map();

// loadDatasets fills the pickers: every dataset in the Data panel (those
// that do not load marked so), the usable ones for training and
// forecasts. choose, when given, becomes the Data panel's dataset.
async function loadDatasets(choose) {
  try {
    const list = await api.listDatasets();
    // A file that does not load is keyed by its file: its name may be
    // another dataset's (bike.csv beside the embedded bike).
    datasets = new Map(list.map((d) => [d.error && d.file ? `file:${d.file}` : d.name, d]));
    const usable = list.filter((d) => !d.error);
    for (const id of ["f-dataset", "fc-dataset"]) {
      const sel = $(id);
      const was = sel.value;
      sel.replaceChildren(...usable.map((d) => el("option", { value: d.name, title: d.description || d.file, text: d.name })));
      if (usable.some((d) => d.name === was)) sel.value = was;
    }
    const pick = $("ds-select");
    const current = choose || pick.value || (usable[0] && usable[0].name) || "";
    pick.replaceChildren(...[...datasets].map(([key, d]) => el("option", {
      value: key, title: d.error || d.description || d.file,
      text: d.error ? `${d.file} — does not load` : `${d.name} (${d.rows} rows${d.source === "embedded" ? ", embedded" : ""})`,
    })));
    if (datasets.has(current)) pick.value = current;
    showDataset(pick.value);
  } catch (err) {
    notice(`Could not list the datasets: ${err.message}`, true);
  }
}

// showDataset draws dataset key in the Data panel and makes it the one the
// run and forecast forms use.
function showDataset(key) {
  const d = datasets.get(key);
  $("ds-delete").disabled = !d || d.source !== "folder" || !!d.read_only;
  if (d && !d.error) {
    for (const id of ["f-dataset", "fc-dataset"]) $(id).value = d.name;
  }
  series.show(d);
}

$("ds-select").addEventListener("change", (ev) => showDataset(ev.target.value));

$("ds-delete").addEventListener("click", async () => {
  const d = datasets.get($("ds-select").value);
  if (!d) return;
  const status = $("upload-status");
  try {
    await api.deleteDataset(d.name);
    status.textContent = `Deleted ${d.name}.`;
    status.className = "";
    await loadDatasets(datasets.has("bike") ? "bike" : "");
  } catch (err) {
    status.textContent = `Could not delete ${d.name}: ${err.message}`;
    status.className = "error";
  }
});

// A chosen file names the dataset, unless a name was typed.
$("up-file").addEventListener("change", (ev) => {
  const name = $("up-name");
  const file = ev.target.files && ev.target.files[0];
  if (file && !name.value) {
    name.value = file.name.replace(/\.csv$/i, "").toLowerCase().replace(/[^a-z0-9_-]+/g, "_").slice(0, 64);
  }
});

$("upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  if (!form.reportValidity()) return;
  const status = $("upload-status");
  if (!$("up-file").files.length) {
    status.textContent = "Choose a CSV file first.";
    status.className = "error";
    return;
  }
  const go = $("upload-go");
  go.disabled = true;
  status.className = "";
  status.textContent = "Uploading…";
  delete status.dataset.line;
  try {
    // The server reads the form in order: the name before the file.
    const data = new FormData();
    data.append("name", $("up-name").value.trim());
    data.append("replace", $("up-replace").checked ? "true" : "false");
    data.append("file", $("up-file").files[0]);
    const info = await api.uploadDataset(data);
    status.textContent = `Stored ${info.name}: ${info.rows} rows, ${info.first} to ${info.last} (version ${info.hash.slice(0, 12)}).`;
    status.dataset.result = "ok";
    form.reset();
    await loadDatasets(info.name);
  } catch (err) {
    // The server's own words: the file, line and problem of a bad CSV.
    status.textContent = `Not stored: ${err.message}`;
    status.className = "error";
    status.dataset.result = "error";
    if (err.detail && err.detail.line) status.dataset.line = String(err.detail.line);
  } finally {
    go.disabled = false;
  }
});

loadDatasets();
stream.start();
render();

// For the browser console and the end-to-end test: kairoscope.stream.drop()
// simulates a lost connection.
window.kairoscope = { runs, stream, forecaster, series };
