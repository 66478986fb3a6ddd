// TrainingStream follows /ws, the training hub, and survives drops.
//
// The server sends a new client the history of every run in progress, then
// live messages; every message carries run_id and a per-run seq that counts
// from 1. The stream keeps the last seq of each run, and on reconnection
// names them (?since=RUN:SEQ,…), so the server sends exactly what it missed:
// nothing twice. It asks for each fold's final prediction_delta only
// (?deltas=final), the one the reliability diagram reads. A run that ended
// before the page opened is fetched on its own (fetchRun, /ws?run=ID). A
// replay_gap message, or a seq that jumps ahead, means the server no longer
// keeps some messages; the stream reports it and goes on.

import { wsURL } from "./api.js";

// Reconnection delays, in ms: quick at first, then every 10 s while the
// server is away. A successful connection starts again from the first.
const backoff = [250, 1000, 2000, 5000, 10000];

// sinceMax is how many runs a reconnection names in ?since= (the server
// takes up to 100): the most recently heard from.
const sinceMax = 50;

// pingEvery is how often the client sends the seed's text "ping" (the server
// answers {"type":"pong"}). The server closes a peer silent for 60 s; the
// browser also answers protocol pings, so this is belt and braces.
const pingEvery = 25000;

export class TrainingStream {
  // onMessage(msg) gets each new message once, in seq order per run.
  // onChart(msg) gets each chart_update, which belongs to no run (no
  // run_id or seq) and is never replayed.
  // onState(state, detail) gets "connecting", "open", "closed" (with the
  // delay before the next try, in ms) and "gap" (with {run_id, from, to}).
  constructor({ onMessage, onChart, onState }) {
    this.onMessage = onMessage;
    this.onChart = onChart || (() => {});
    this.onState = onState;
    this.lastSeq = new Map(); // run_id -> last seq handed to onMessage, most recent last
    this.replayed = 0; // messages dropped as seen before (resumption makes it 0)
    this.resumes = 0; // connections opened with ?since=
    this.fetched = new Set(); // run_ids fetchRun has read, or reads
    this.ws = null;
    this.attempt = 0;
    this.timer = 0;
    this.pinger = 0;
  }

  start() {
    clearTimeout(this.timer);
    this.onState("connecting");
    const since = [...this.lastSeq].slice(-sinceMax).map(([id, seq]) => `${id}:${seq}`).join(",");
    if (since) this.resumes++;
    const ws = new WebSocket(wsURL("/ws", { deltas: "final", since }));
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.onState("open");
      this.pinger = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send("ping"), pingEvery);
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = (ev) => {
      clearInterval(this.pinger);
      if (this.ws !== ws) return; // replaced by a newer socket
      this.ws = null;
      const delay = backoff[Math.min(this.attempt, backoff.length - 1)];
      this.attempt++;
      this.onState("closed", { delay, code: ev.code, reason: ev.reason });
      this.timer = setTimeout(() => this.start(), delay);
    };
  }

  // drop closes the socket as a network failure would, so the stream
  // reconnects and the server replays: for the console and the tests.
  drop() {
    if (this.ws) this.ws.close(4000, "dropped by the page");
  }

  // fetchRun reads run id's whole history (or what follows what the stream
  // has of it) on a socket of its own, which the server closes after the
  // run's last message: for a run that ended before the page opened.
  fetchRun(id) {
    if (this.fetched.has(id)) return;
    this.fetched.add(id);
    const last = this.lastSeq.get(id);
    const ws = new WebSocket(wsURL("/ws", { run: id, deltas: "final", since: last ? `${id}:${last}` : "" }));
    ws.onmessage = (ev) => this.receive(ev.data);
  }

  receive(data) {
    let msg = peekDelta(data);
    try {
      msg = msg || withRows(JSON.parse(data));
    } catch (err) {
      // The seed's advice: note it and go on with the next message.
      console.warn("kairoscope: a /ws frame is not JSON:", String(data).slice(0, 200), err);
      return;
    }
    if (!msg || typeof msg !== "object" || msg.type === "pong") return;
    if (msg.type === "replay_gap") {
      this.onState("gap", { run_id: msg.run_id, from: msg.missed_from, to: msg.missed_to });
      this.seen(msg.run_id, Math.max(this.lastSeq.get(msg.run_id) || 0, msg.missed_to));
      return;
    }
    if (msg.type === "chart_update") {
      this.charts = (this.charts || 0) + 1;
      this.onChart(msg);
      return;
    }
    const id = msg.run_id;
    const seq = msg.seq;
    if (typeof id !== "string" || !Number.isInteger(seq)) {
      console.warn("kairoscope: a /ws message without run_id and seq:", msg.type);
      return;
    }
    const last = this.lastSeq.get(id) || 0;
    if (seq <= last) {
      this.replayed++; // replayed: seen before this reconnection
      return;
    }
    // Seqs of the deltas not asked for are skipped on purpose: no gap.
    this.seen(id, seq);
    this.onMessage(msg);
  }

  // seen records seq as run id's last, keeping the map in recency order.
  seen(id, seq) {
    this.lastSeq.delete(id);
    this.lastSeq.set(id, seq);
  }
}

// Prediction deltas are the large messages (a row per scored day, up to
// 2,000 rows and ~400 KB a part, an epoch's rows in one or more parts; one
// per epoch and fold, all of them again in a replay), and the
// dashboard reads the rows of few of them. peekDelta reads a delta's small
// fields from its head and tail, where the server puts them, and parses the
// rows only when rows() is called. Anything it does not recognise returns
// null and is parsed in full.
const deltaHead = /^\{"type":"prediction_delta","fold_id":(\d+),"epoch":(\d+),(?:"part":(\d+),"parts":(\d+),)?("final":true,)?"predictions":/;
const deltaTail = /,"run_id":("(?:[^"\\]|\\.)*"),"seq":(\d+),"attempt":(\d+)\}\s*$/;

function peekDelta(data) {
  if (typeof data !== "string" || !data.startsWith('{"type":"prediction_delta"')) return null;
  const h = deltaHead.exec(data.slice(0, 200));
  const t = deltaTail.exec(data.slice(-300));
  if (!h || !t) return null;
  let raw = data;
  let rows = null;
  return {
    type: "prediction_delta",
    fold_id: Number(h[1]),
    epoch: Number(h[2]),
    part: h[3] === undefined ? 1 : Number(h[3]),
    parts: h[4] === undefined ? 1 : Number(h[4]),
    final: h[5] !== undefined,
    run_id: JSON.parse(t[1]),
    seq: Number(t[2]),
    attempt: Number(t[3]),
    bytes: data.length,
    rows() {
      if (rows === null) {
        rows = JSON.parse(raw).predictions || [];
        raw = null;
      }
      return rows;
    },
  };
}

// withRows gives a fully parsed delta the rows(), part and parts of
// peekDelta's (a delta without part and parts is whole).
function withRows(msg) {
  if (msg && msg.type === "prediction_delta") {
    const rows = Array.isArray(msg.predictions) ? msg.predictions : [];
    msg.rows = () => rows;
    msg.part = Number.isInteger(msg.part) ? msg.part : 1;
    msg.parts = Number.isInteger(msg.parts) ? msg.parts : 1;
    msg.final = msg.final === true;
  }
  return msg;
}
