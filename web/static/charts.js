// The dashboard's charts, drawn by uPlot (vendored from npm by build.mjs).
// Each chart follows its container's width; data arrives as uPlot's
// aligned arrays: [x, series1, series2, ...], with null for a gap.

import uPlot from "./vendor/uplot/uPlot.esm.js";

// One colour per fold, distinct in colour-blind palettes (Okabe–Ito).
const palette = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"];
export const foldColor = (i) => palette[i % palette.length];

const axisStroke = "#444";
const gridStroke = "#e4e4e4";

// Chart is one uPlot chart in container, rebuilt only when its shape (the
// key given to update) changes, and resized with its container.
export class Chart {
  constructor(container, height = 220) {
    this.container = container;
    this.height = height;
    this.key = null;
    this.plot = null;
    this.resize = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({ width: this.width(), height: this.height });
    });
    this.resize.observe(container);
  }

  width() {
    return Math.max(200, this.container.clientWidth);
  }

  // update shows data; opts() builds uPlot's options when key differs from
  // the last call's (the series changed), else the chart only gets new data.
  update(key, opts, data) {
    if (key !== this.key || !this.plot) {
      if (this.plot) this.plot.destroy();
      this.key = key;
      this.plot = new uPlot({ width: this.width(), height: this.height, ...opts() }, data, this.container);
    } else {
      this.plot.setData(data);
    }
  }
}

function axes(xLabel, yLabel, x = {}) {
  const common = { stroke: axisStroke, grid: { stroke: gridStroke, width: 1 }, ticks: { stroke: gridStroke } };
  return [{ ...common, label: xLabel, ...x }, { ...common, label: yLabel, size: 56 }];
}

// epochOpts are the options of a per-epoch chart of one metric (or two,
// train dashed and val solid, for the loss) with a series per fold.
export function epochOpts(yLabel, folds, twoSets) {
  const series = [{ label: "epoch" }];
  for (let i = 0; i < folds; i++) {
    if (twoSets) series.push({ label: `fold ${i + 1} train`, stroke: foldColor(i), width: 1.5, dash: [5, 4] });
    series.push({ label: twoSets ? `fold ${i + 1} val` : `fold ${i + 1}`, stroke: foldColor(i), width: 2 });
  }
  return {
    scales: { x: { time: false } },
    axes: axes("epoch", yLabel, { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500] }),
    series,
    cursor: { points: { size: 6 } },
  };
}

// reliabilityOpts: observed frequency of a rise against the predicted
// probability, one series per completed fold, and the diagonal of perfect
// calibration.
export function reliabilityOpts(folds) {
  const series = [{ label: "p_up_cal", value: (u, v) => (v == null ? "–" : v.toFixed(2)) },
    { label: "perfect", stroke: "#888", width: 1, dash: [3, 3], points: { show: false } }];
  for (const i of folds) {
    series.push({ label: `fold ${i + 1}`, stroke: foldColor(i), width: 1.5, spanGaps: true, points: { show: true, size: 7, fill: foldColor(i) } });
  }
  return {
    scales: { x: { time: false, range: [0, 1] }, y: { range: [0, 1] } },
    axes: axes("mean predicted P(up) in the bin", "observed frequency of up"),
    series,
  };
}

// forecastOpts: the forecast with its confidence band (series 1 low, 2
// high, 3 the forecast); dates are UTC days.
export function forecastOpts(yLabel) {
  const band = "rgba(0, 114, 178, 0.18)";
  return {
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    axes: axes("date (UTC)", yLabel),
    series: [
      { label: "date" },
      { label: "conf_low", stroke: "rgba(0, 114, 178, 0.5)", width: 1 },
      { label: "conf_high", stroke: "rgba(0, 114, 178, 0.5)", width: 1 },
      { label: "forecast", stroke: "#0072b2", width: 2.5, points: { show: true, size: 5 } },
    ],
    bands: [{ series: [2, 1], fill: band }],
  };
}

// candles is a uPlot plugin that draws series 1..4 (open, high, low, close)
// as candlesticks: a wick from low to high, a body from open to close,
// filled when the close is below the open. Those series draw nothing
// themselves (their paths are null); they set the y range and the legend.
function candles() {
  const up = "#009e73";
  const down = "#d55e00";
  return {
    hooks: {
      draw: (u) => {
        const [xs, open, high, low, close] = u.data;
        const ctx = u.ctx;
        const i0 = u.series[0].idxs ? u.series[0].idxs[0] : 0;
        const i1 = u.series[0].idxs ? u.series[0].idxs[1] : xs.length - 1;
        const n = Math.max(1, i1 - i0 + 1);
        const w = Math.max(1, Math.floor((u.bbox.width / n) * 0.6));
        ctx.save();
        ctx.beginPath();
        ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
        ctx.clip();
        for (let i = i0; i <= i1; i++) {
          if (open[i] == null || close[i] == null) continue;
          const x = Math.round(u.valToPos(xs[i], "x", true));
          const yo = u.valToPos(open[i], "y", true);
          const yc = u.valToPos(close[i], "y", true);
          const color = close[i] >= open[i] ? up : down;
          ctx.strokeStyle = color;
          ctx.fillStyle = color;
          ctx.lineWidth = 1;
          ctx.beginPath();
          ctx.moveTo(x + 0.5, u.valToPos(high[i], "y", true));
          ctx.lineTo(x + 0.5, u.valToPos(low[i], "y", true));
          ctx.stroke();
          const top = Math.min(yo, yc);
          const h = Math.max(1, Math.abs(yc - yo));
          if (close[i] >= open[i]) ctx.strokeRect(x - w / 2 + 0.5, top + 0.5, w, h);
          else ctx.fillRect(x - w / 2, top, w + 1, h);
        }
        ctx.restore();
      },
    },
  };
}

// seriesOpts: a dataset's series, as candles (OHLCV) or a line (its
// target), with the last forecast's band and line after it; dates are UTC
// days.
export function seriesOpts(target, ohlcv) {
  const band = "rgba(0, 114, 178, 0.18)";
  const hidden = { paths: () => null, points: { show: false } };
  const history = ohlcv
    ? ["open", "high", "low", "close"].map((label) => ({ label, stroke: "#555", ...hidden }))
    : [{ label: target, stroke: "#1b1b1b", width: 1.5, points: { show: false } }];
  const first = history.length + 1; // index of conf_low
  return {
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    axes: axes("date (UTC)", target),
    series: [
      { label: "date" },
      ...history,
      { label: "conf_low", stroke: "rgba(0, 114, 178, 0.5)", width: 1, points: { show: false } },
      { label: "conf_high", stroke: "rgba(0, 114, 178, 0.5)", width: 1, points: { show: false } },
      { label: "forecast", stroke: "#0072b2", width: 2, points: { show: false } },
    ],
    bands: [{ series: [first + 1, first], fill: band }],
    plugins: ohlcv ? [candles()] : [],
  };
}
