// SeriesView is the Data panel's model: one dataset's rows as the server
// has them, kept up to date by chart_update, with the last forecast of it.
//
// It loads the rows once (GET /api/datasets/{name}?format=json), then
// applies each chart_update whose previous_hash is the hash of the rows it
// holds. chart_update is never replayed, so after a missed one (a dropped
// connection, a replaced file) the hashes disagree and it loads what is
// newer than its last date (?since=), or everything when that fails.

import * as api from "./api.js";

export class SeriesView {
  // onUpdate(state) is called after every change; state is this.state.
  constructor(onUpdate) {
    this.onUpdate = onUpdate;
    this.state = null;
    this.forecast = null; // the last finished forecast: {dataset, payload, hash, rows}
    this.loading = 0; // a counter: a newer load makes older answers stale
  }

  // show loads dataset name (info from GET /api/datasets) and draws it.
  async show(info) {
    const token = ++this.loading;
    if (!info || info.error) {
      this.state = info ? { name: info.name, info, error: info.error } : null;
      this.onUpdate(this.state);
      return;
    }
    this.state = { name: info.name, info, loading: true, rows: [], hash: "", pending: null };
    this.onUpdate(this.state);
    try {
      const s = await api.datasetRows(info.name);
      if (token !== this.loading) return;
      this.state = { name: info.name, info: s, rows: s.data, hash: s.hash, pending: null, updates: 0 };
    } catch (err) {
      if (token !== this.loading) return;
      this.state = { name: info.name, info, error: `could not load the rows: ${err.message}` };
    }
    this.onUpdate(this.state);
  }

  // chart applies a chart_update to the rows shown, when it is of them.
  chart(msg) {
    const s = this.state;
    if (!s || s.name !== msg.dataset || !Array.isArray(s.rows) || s.loading) return;
    const p = s.pending;
    const fits = msg.part === 1 ? msg.previous_hash === s.hash : p && p.hash === msg.hash && p.next === msg.part;
    if (!fits) {
      this.resync();
      return;
    }
    s.rows.push(...msg.rows);
    s.pending = msg.part < msg.parts ? { hash: msg.hash, next: msg.part + 1 } : null;
    if (!s.pending) s.hash = msg.hash;
    s.info = { ...s.info, rows: msg.total_rows, last: msg.last, hash: msg.hash };
    s.updates++;
    this.onUpdate(s);
  }

  // resync loads the rows after the last one held: after a reconnection,
  // or a chart_update that does not follow from what is held.
  async resync() {
    const s = this.state;
    if (!s || !Array.isArray(s.rows) || s.loading || s.syncing) return;
    s.syncing = true;
    const token = this.loading;
    try {
      const last = s.rows.length ? s.rows[s.rows.length - 1].date : "";
      const newer = await api.datasetRows(s.name, last);
      if (token !== this.loading) return;
      s.rows.push(...newer.data);
      s.hash = newer.hash;
      s.pending = null;
      s.info = { ...s.info, ...newer, data: undefined };
      // Rows the client held that the file no longer has (it was
      // replaced): the counts disagree, so load it all again.
      if (s.rows.length !== newer.rows) {
        s.syncing = false;
        await this.show(newer);
        return;
      }
      this.onUpdate(s);
    } catch (err) {
      console.warn("kairoscope: reloading the series:", err);
    } finally {
      s.syncing = false;
    }
  }

  // forecasted records a finished forecast, drawn over its dataset.
  forecasted(f) {
    this.forecast = f;
    this.onUpdate(this.state);
  }
}
