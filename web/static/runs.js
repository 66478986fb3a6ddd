// The dashboard's model of the training runs: what /ws and /api/runs have
// said about each, with no DOM. Field names are those of schema/training.go
// and schema/extensions.go, the source of truth for /ws messages.

// Run states, as GET /api/runs names them.
export const ACTIVE = new Set(["queued", "running", "cancelling"]);

// The epoch metrics the dashboard shows, in table order.
export const METRICS = [
  "train_loss", "val_loss", "val_auc", "DirAcc", "ECE", "conformal_coverage", "conformal_width",
];

// Most notifications kept per run; older ones are dropped.
const maxNotes = 50;

export class Runs {
  constructor() {
    this.byId = new Map(); // run_id -> run, in order of first sight
  }

  // get returns run id, creating an empty one on first sight.
  get(id) {
    let r = this.byId.get(id);
    if (!r) {
      r = {
        id,
        state: "queued",
        request: null,
        created: null,
        dataset: null, // dataset_ready
        start: null, // training_start
        folds: [], // by fold_id: see fold()
        trials: [], // a tune's hpo_trial messages, by trial
        notes: [],
        error: null,
        complete: null, // training_complete
        messages: 0,
        attempt: 0, // the attempt whose messages are shown
        firstSeen: this.byId.size,
      };
      this.byId.set(id, r);
    }
    return r;
  }

  // list returns the runs, oldest first.
  list() {
    return [...this.byId.values()].sort((a, b) =>
      a.created && b.created ? a.created.localeCompare(b.created) : a.firstSeen - b.firstSeen);
  }

  // info merges what GET or POST /api/runs says of a run.
  info(ri) {
    const r = this.get(ri.run_id);
    r.request = ri.request || r.request;
    r.created = ri.created || r.created;
    // A run's state only moves forward, queued → running → ended, whichever
    // source says so first: the API's answer may be older than messages
    // already in. Only the API tells "cancelled" from "failed" for sure.
    if (rank(ri.state) > rank(r.state) || (ri.state === "cancelled" && r.state === "failed")) r.state = ri.state;
    if (ri.error && !r.error) r.error = ri.error;
    return r;
  }

  // listed takes a full GET /api/runs listing, asked for when the runs
  // in before were known. A run of before still active here that the
  // server does not list belonged to a server that has since restarted:
  // its end will never come, so it is marked lost. (Runs seen after the
  // request may simply be newer than the listing.)
  listed(infos, before) {
    const ids = new Set(infos.map((ri) => ri.run_id));
    for (const ri of infos) this.info(ri);
    for (const r of this.byId.values()) {
      if (before.has(r.id) && !ids.has(r.id) && ACTIVE.has(r.state)) {
        r.state = "lost";
        r.error = "the server restarted before this run ended";
      }
    }
  }

  // apply folds one /ws message into its run and returns the run.
  apply(msg) {
    const r = this.get(msg.run_id);
    if (Number.isInteger(msg.attempt) && msg.attempt > r.attempt) {
      // A new attempt starts the run again (its agent was lost or
      // stopped): its progress so far no longer counts.
      if (r.attempt > 0) resetProgress(r);
      r.attempt = msg.attempt;
    }
    r.messages++;
    if (r.state === "queued") r.state = "running"; // its worker has started
    switch (msg.type) {
      case "dataset_ready":
        r.dataset = msg;
        break;
      case "training_start":
        r.start = msg;
        // A tune's folds are its trials': it reports trials, not epochs.
        if (!msg.total_trials) for (let i = 0; i < msg.total_folds; i++) fold(r, i);
        break;
      case "hpo_trial":
        r.trials[msg.trial] = msg;
        break;
      case "batch_progress": {
        const f = fold(r, msg.fold_id);
        // Only the epoch under way: a late one would move the bar back.
        if (msg.epoch === (f.last ? f.last.epoch + 1 : 0)) f.batch = msg;
        break;
      }
      case "epoch_metrics": {
        const f = fold(r, msg.fold_id);
        f.epochs[msg.epoch] = msg;
        if (!f.last || msg.epoch >= f.last.epoch) f.last = msg;
        f.batch = null;
        break;
      }
      case "prediction_delta": {
        // Only the newest delta's parts are kept (a part may be hundreds of
        // KB): the fold's final one, best epoch and calibrated, comes just
        // before fold_complete and is what its reliability diagram shows.
        const f = fold(r, msg.fold_id);
        const key = msg.final ? "final" : msg.epoch;
        if (!f.delta || f.delta.key !== key) f.delta = { key, epoch: msg.epoch, final: msg.final, parts: msg.parts, got: [] };
        f.delta.got[msg.part - 1] = msg;
        break;
      }
      case "fold_complete": {
        const f = fold(r, msg.fold_id);
        f.complete = msg;
        f.reliability = null;
        if (f.delta) {
          let rows = [];
          for (const d of f.delta.got) if (d) rows = rows.concat(d.rows());
          f.reliability = reliability(rows, 10);
          f.reliabilityEpoch = f.delta.epoch;
          f.reliabilityFinal = f.delta.final;
          // A missing part (history the server no longer keeps) leaves
          // the diagram drawn from the rows there are.
          f.reliabilityPartial = f.delta.got.filter(Boolean).length < f.delta.parts;
        }
        f.delta = null;
        break;
      }
      case "training_complete":
        r.complete = msg;
        r.state = "completed";
        break;
      case "training_error":
        r.error = msg.error;
        r.state = /cancel/i.test(msg.error) ? "cancelled" : "failed";
        break;
      case "notification":
        r.notes.push(msg);
        if (r.notes.length > maxNotes) r.notes.shift();
        break;
      default:
        // A newer message type: nothing to show yet.
    }
    return r;
  }
}

// rank orders run states: queued, running (or cancelling), then any end.
const rank = (state) => (state === "queued" ? 0 : state === "running" || state === "cancelling" ? 1 : 2);

// resetProgress forgets a run's progress when a new attempt starts it
// again; its notifications stay, the retry's among them.
function resetProgress(r) {
  r.dataset = null;
  r.start = null;
  r.folds = [];
  r.trials = [];
  r.error = null;
  r.complete = null;
}

// fold returns fold i of run r, creating it (and those before it).
function fold(r, i) {
  while (r.folds.length <= i) {
    r.folds.push({ id: r.folds.length, epochs: [], last: null, batch: null, delta: null, complete: null, reliability: null });
  }
  return r.folds[i];
}

// reliability bins rows by p_up_cal into n equal bins and returns, per bin,
// the mean predicted probability, the observed frequency of a rise
// (y_true > 0) and the count. Rows with no p_up_cal or y_true are skipped.
export function reliability(rows, n) {
  const bins = Array.from({ length: n }, () => ({ p: 0, up: 0, count: 0 }));
  for (const row of rows) {
    const p = row.p_up_cal;
    const y = row.y_true;
    if (typeof p !== "number" || typeof y !== "number") continue;
    const b = bins[Math.min(n - 1, Math.max(0, Math.floor(p * n)))];
    b.p += p;
    b.up += y > 0 ? 1 : 0;
    b.count++;
  }
  return bins.map((b, i) => ({
    lo: i / n,
    hi: (i + 1) / n,
    count: b.count,
    predicted: b.count ? b.p / b.count : null,
    observed: b.count ? b.up / b.count : null,
  }));
}
