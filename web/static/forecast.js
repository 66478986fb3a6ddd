// Forecaster asks /ws/predict for a forecast and follows it to its end.
//
// The server starts (or joins) the forecast of ?dataset=&horizon= on
// connect, sends "message" and "steps" lines, then "output" or "error", and
// closes normally. Its messages carry run_id and seq like /ws, and a client
// that reconnects while the forecast runs joins it again from seq 1, so a
// dropped connection is retried and what was seen is skipped.

import { wsURL } from "./api.js";

const retries = [500, 1500, 4000]; // delays of the reconnections after a drop, ms

export class Forecaster {
  // onUpdate(state) is called after every change; state is this.state.
  constructor(onUpdate) {
    this.onUpdate = onUpdate;
    this.ws = null;
    this.state = { status: "idle" };
  }

  // start asks for a new forecast, leaving any previous one.
  start(dataset, horizon) {
    this.close();
    this.params = { dataset, horizon };
    this.lastSeq = new Map();
    this.tries = 0;
    this.state = { status: "running", dataset, horizon, message: "connecting…", step: 0, total: 0, payload: null };
    this.onUpdate(this.state);
    this.connect();
  }

  close() {
    clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, "a new forecast");
    }
  }

  connect() {
    const ws = new WebSocket(wsURL("/ws/predict", this.params));
    this.ws = ws;
    ws.onmessage = (ev) => this.ws === ws && this.receive(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const s = this.state;
      if (s.status !== "running") return; // output or error came first
      if (this.tries < retries.length) {
        s.message = `connection lost (${ev.code}); reconnecting…`;
        this.timer = setTimeout(() => this.connect(), retries[this.tries++]);
      } else {
        s.status = "error";
        s.message = `connection lost (${ev.code} ${ev.reason}) before the forecast ended`;
      }
      this.onUpdate(s);
    };
  }

  receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      console.warn("kairoscope: a /ws/predict frame is not JSON:", String(data).slice(0, 200));
      return;
    }
    if (typeof msg.run_id === "string" && Number.isInteger(msg.seq)) {
      if (msg.seq <= (this.lastSeq.get(msg.run_id) || 0)) return; // replayed after a reconnection
      this.lastSeq.set(msg.run_id, msg.seq);
    }
    const s = this.state;
    if (typeof msg.run_id === "string") s.id = msg.run_id; // the forecast joined: shared by clients asking the same
    switch (msg.status) {
      case "message":
        s.message = msg.message;
        break;
      case "steps":
        // total_step is an estimate that may shrink (early stopping).
        s.message = msg.message;
        s.step = msg.step;
        s.total = Math.max(msg.total_step, msg.step);
        s.stepName = msg.step_name;
        break;
      case "output":
        s.status = "done";
        s.payload = Array.isArray(msg.payload) ? msg.payload : [];
        s.dataHash = msg.dataset_hash || ""; // the version of the data it was trained on
        s.dataRows = msg.dataset_rows || 0;
        s.message = `${s.payload.length} days forecast`;
        break;
      case "error":
        s.status = "error";
        s.message = msg.message;
        break;
      default:
        return;
    }
    this.onUpdate(s);
  }
}
