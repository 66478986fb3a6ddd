package benchmarks

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kairoscope/kairoscope/benchmarks/hubload"
)

// `make bench-quick` end to end with one run a side: it builds the
// benchmark binaries, times the CPU engine (and the PyTorch peer when
// Debian's python3-torch is there), measures the hub (with 20 clients, not
// 1,000, to spare the machine), prints the table and writes a results file
// that reads back.
func TestRunQuick(t *testing.T) {
	res, stdout := runBench(t, "-quick", "-runs", "1", "-hub-clients", "20")
	if res.Schema != Schema || res.Mode != "quick" || len(res.Configs) != 1 {
		t.Fatalf("results: schema %q, mode %q, %d configs; want %q, quick, 1", res.Schema, res.Mode, len(res.Configs), Schema)
	}
	c := res.Configs[0]
	if c.Kairoscope == nil || c.Kairoscope.SPerEpoch <= 0 || c.Kairoscope.PeakRSSBytes <= 0 {
		t.Errorf("Kairoscope's side: %+v; want a time and a peak RSS", c.Kairoscope)
	}
	if res.Machine.Torch == "" {
		if res.Machine.TorchUnavailable == "" || !strings.Contains(stdout, "PyTorch unavailable") {
			t.Error("no PyTorch and no reason why")
		}
	} else if c.Torch == nil || c.Ratio != c.Kairoscope.SPerEpoch/c.Torch.SPerEpoch {
		t.Errorf("PyTorch %s ran, but the side is %+v and the ratio %v", res.Machine.Torch, c.Torch, c.Ratio)
	}
	if !res.GPU.Available {
		if res.GPU.Reason == "" || res.GPU.Emulator == nil || res.GPU.Emulator.PerStep.Gemms != 8 {
			t.Errorf("no GPU: want a reason and the emulator's counts, got %+v", res.GPU)
		}
		if !strings.Contains(stdout, "GPU unavailable: ") {
			t.Error("the table does not say the GPU is unavailable")
		}
	}
	if !strings.Contains(stdout, "Kairoscope/PyTorch") {
		t.Error("the table has no ratio column")
	}
	h := res.Hub
	if h == nil || h.Clients != 20 || h.Runs != 1 || len(h.Paths)+len(h.Skipped) != len(hubload.Paths) {
		t.Fatalf("hub: %+v; want 20 clients, one run a side, every path measured or skipped", h)
	}
	for _, p := range h.Paths {
		if p.Lost != 0 || p.Deliveries != int64(20*p.MessagesPerClient) || p.Slowdown <= 0 {
			t.Errorf("hub path %s: %+v; want every message delivered", p.Path, p)
		}
	}
	if s := h.Start; s == nil || s.Runs != 1 || s.LocalS <= 0 || s.AgentS <= 0 {
		t.Errorf("start latency: %+v; want one run local and one through an agent", s)
	}
	for _, want := range []string{"Hub: 20 clients on plain /ws", "Start: POST /api/runs"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the table lacks %q", want)
		}
	}
}

// The hub section holds each measure against its target and says by how
// much a missed latency target is missed.
func TestTableHub(t *testing.T) {
	path := func(name string, p99, rss float64) hubload.PathResult {
		return hubload.PathResult{Path: name, Stack: name + " stack", Messages: 40, MessagesPerClient: 36, BytesPerClient: 24000,
			Deliveries: 108000, P50: p99 / 4, P99: p99, RunsP99: []float64{p99, p99 + 1, p99 - 1},
			AloneS: 0.5, LoadedS: 0.6, Slowdown: 1.2, ConnBytes: 13 << 10, ConnRSSBytes: int64(rss * 1024),
			ByType: []hubload.TypeLatency{{Type: "epoch_metrics", Messages: 30, Bytes: 646, Latency: hubload.Latency{P99: p99}}}}
	}
	h := &hubload.Result{Clients: 1000, Runs: 3, Request: hubload.DefaultRequest,
		Pinning: hubload.Pinning{Server: "0", Clients: "1"},
		Paths:   []hubload.PathResult{path("log", 168, 15), path("memory", 8, 14), path("fastapi", 300, 32)},
		Start:   &hubload.StartResult{Runs: 3, LocalS: 0.41, AgentS: 0.52, LocalRuns: []float64{0.4, 0.41, 0.42}, AgentRuns: []float64{0.5, 0.52, 0.53}}}
	h.Paths[2].ConnBytes = -1
	var out bytes.Buffer
	printHub(&out, h)
	s := out.String()
	t.Logf("\n%s", s)
	for _, want := range []string{"Hub: 1,000 clients on plain /ws", "server on CPU 0, clients on CPU 1", "bike, 3 folds × 10 epochs",
		"168.0 ms (42.0) NOT MET 17×", "8.0 ms (2.0) met", "0 of 108,000 (0, 0)", "36 of 40, 23.4 KiB", "1.20× (0.50 → 0.60 s) NOT MET",
		"15.0 KiB (13.0 KiB) met", "32.0 KiB (—) NOT MET", "≤ 24.0 KiB", "fastapi: fastapi stack", "epoch_metrics 30×",
		"local (serve's own agent) 0.410 s, through a kairoscope agent process 0.520 s"} {
		if !strings.Contains(s, want) {
			t.Errorf("the hub section lacks %q", want)
		}
	}
	if n := strings.Count(s, "NOT MET"); n != 6 {
		t.Errorf("%d targets not met; want 6 (latency of log and fastapi, three slowdowns, fastapi's memory)", n)
	}
}

// With a GPU the table gains the GPU engine's columns: its time, device
// memory and ratio to PyTorch, on the configurations it ran.
func TestTableWithGPU(t *testing.T) {
	res := &Results{Mode: "quick", Method: Method{Runs: 1, WarmupEpochs: 1, TorchThreads: 1},
		GPU: GPUReport{Available: true, Device: "GPU 0: Test GPU"}}
	res.Machine.Torch = "1.13"
	res.Configs = []ConfigResult{{Config: Default, Steps: 40, Epochs: 10,
		Kairoscope: &Side{SPerEpoch: 0.01, SamplesPerS: 1e6, PeakRSSBytes: 26 << 20},
		GPU:        &Side{SPerEpoch: 0.002, SamplesPerS: 5e6, DeviceBytes: 3 << 20},
		Torch:      &Side{SPerEpoch: 0.025, SamplesPerS: 4e5, PeakRSSBytes: 242 << 20},
		Ratio:      0.4, GPURatio: 0.08}}
	var out bytes.Buffer
	printTable(&out, res)
	s := out.String()
	t.Logf("\n%s", s)
	lines := strings.Split(s, "\n")
	var head, row string
	for i, l := range lines {
		if strings.Contains(l, "GPU/PyTorch") && i+1 < len(lines) {
			head, row = l, lines[i+1]
		}
	}
	if head == "" {
		t.Fatal("no GPU/PyTorch column")
	}
	for _, want := range []string{"0.0020", "5,000,000", "3.0 MiB", "0.40", "0.08"} {
		if !strings.Contains(row, want) {
			t.Errorf("row %q lacks %q", row, want)
		}
	}
	if !strings.Contains(s, "GPU: GPU 0: Test GPU") || strings.Contains(s, "unavailable") {
		t.Error("the footer does not name the GPU")
	}
}

// The forecast section gives each series' medians, the speed-up over the
// reference, auto.arima's time or R unavailable, and /ws/predict's line.
func TestTableForecast(t *testing.T) {
	f := &ForecastResult{Ref: "abc123", Runs: 3, RUnavailable: "R unavailable: no Rscript",
		Series:  []ForecastSeriesResult{{Name: "transit (5,700 days)", Rows: 5700, Seconds: 2.5, PeakRSS: 300 << 20, RefSeconds: 40, RefPeakRSS: 200 << 20, Speedup: 16}},
		Predict: &PredictPipeline{Dataset: "transit", SecondsToOut: 2.7, Steps: 140, FirstTotal: 600, LastTotal: 140, StepsFollow: true, OutputDays: 30}}
	var out bytes.Buffer
	printForecast(&out, f)
	s := out.String()
	t.Logf("\n%s", s)
	for _, want := range []string{"medians of 3 runs", "abc123", "transit (5,700 days)", "2.50", "300.0 MiB", "40.00", "16.0×", "—",
		"R unavailable: no Rscript", "output after 2.70 s; 140 steps, total_step 600 → 140, steps follow the seed: true; 30 days"} {
		if !strings.Contains(s, want) {
			t.Errorf("the forecast section lacks %q", want)
		}
	}
}

// The forecast benchmark end to end on bike alone, against HEAD as the
// reference: both builds predict, R is timed or said unavailable, and the
// /ws/predict client reads steps that follow the seed and a 30-day output.
func TestForecastBenchmark(t *testing.T) {
	defer func(s []struct{ Name, Path, Dataset string }) { ForecastSeries = s }(ForecastSeries)
	ForecastSeries = ForecastSeries[:1]
	res, _ := runBench(t, "-only", "forecast", "-forecast-runs", "1", "-forecast-ref", "HEAD")
	f := res.Forecast
	if f == nil || len(f.Series) != 1 || f.Series[0].Rows != 731 || f.Series[0].Seconds <= 0 || f.Series[0].RefSeconds <= 0 || f.Series[0].PeakRSS <= 0 {
		t.Fatalf("forecast results %+v", f)
	}
	if (f.Series[0].RSeconds > 0) == (f.RUnavailable != "") {
		t.Errorf("auto.arima %v s and R unavailable %q: want exactly one", f.Series[0].RSeconds, f.RUnavailable)
	}
	if p := f.Predict; p == nil || !p.StepsFollow || p.OutputDays != 30 || p.Steps < 1 || p.LastTotal > p.FirstTotal || p.SecondsToOut <= 0 {
		t.Errorf("/ws/predict %+v", p)
	}
}

// runBench runs the bench command with args and a results file in a
// temporary folder, logs its table and returns the results read back and
// the table.
func runBench(t *testing.T, args ...string) (*Results, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "results.json")
	var stdout, stderr bytes.Buffer
	if err := Run(ctx, append(args, "-out", out), &stdout, &stderr); err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	t.Logf("\n%s", stdout.String())
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return &res, stdout.String()
}
