// The dashboard's entry point: it follows /ws, keeps the runs' state, and
// wires the controls to the REST API. Rendering is in view.js, the /ws
// client in stream.js, the /ws/predict client in forecast.js.

import * as api from "./api.js";
import { TrainingStream } from "./stream.js";
import { Runs, ACTIVE } from "./runs.js";
import { renderRun, renderForecast, el } from "./view.js";
import { Forecaster } from "./forecast.js";

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

const stream = new TrainingStream({
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

const forecaster = new Forecaster(renderForecast);
$("forecast-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (!ev.target.reportValidity()) return;
  forecaster.start($("fc-dataset").value, $("fc-horizon").value);
});

async function loadDatasets() {
  try {
    const list = await api.listDatasets();
    for (const id of ["f-dataset", "fc-dataset"]) {
      const sel = $(id);
      sel.replaceChildren(...list.map((d) => el("option", { value: d.name, title: d.description, text: d.name })));
    }
  } catch (err) {
    notice(`Could not list the datasets: ${err.message}`, true);
  }
}

loadDatasets();
stream.start();
render();

// For the browser console and the end-to-end test: kairoscope.stream.drop()
// simulates a lost connection.
window.kairoscope = { runs, stream, forecaster };
