package benchmarks

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/kairoscope/kairoscope/benchmarks/hubload"
)

// options are Run's flags.
type options struct {
	quick   bool
	runs    int
	out     string
	blas    string
	python  string
	goCmd   string
	timeout time.Duration
	only    string
	gpu     bool
	// The PyTorch peer's --device and --modes (cpu and step: make bench's
	// comparison; the GPU check sets cuda and several).
	torchDevice, torchModes string
	// The hub benchmark: clients (0 skips it), runs a side per path, the
	// paths, whether to pin, start-latency runs per mode (0 skips them),
	// and a folder for CPU profiles.
	hubClients, hubRuns, hubStartRuns int
	hubPaths                          []string
	hubPin                            bool
	hubProfile                        string
	// The forecast benchmark: runs a side (0 skips it) and the reference
	// revision.
	forecastRuns int
	forecastRef  string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.quick, "quick", false, "the default model only, fewer runs and epochs (under a minute)")
	fs.IntVar(&o.runs, "runs", 0, "runs per configuration and side (default 5, quick 3)")
	fs.StringVar(&o.out, "out", "", "results file (default benchmarks/results/full.json or quick.json)")
	fs.StringVar(&o.blas, "blas", "auto", "the CPU engine's BLAS: auto (OpenBLAS when it links, else gonum), openblas or gonum")
	fs.StringVar(&o.python, "python", "/usr/bin/python3", "the Python with torch for the PyTorch peer (Debian's python3-torch)")
	fs.StringVar(&o.goCmd, "go", "go", "the go command that builds the benchmark binaries")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "limit on any one process (build, run or peer)")
	fs.StringVar(&o.only, "only", "", "run only the configurations of this kind (default, rows, hidden, batch), or only the hub (hub) or forecast (forecast) benchmark")
	fs.BoolVar(&o.gpu, "gpu", true, "benchmark the GPU engine when nvidia-smi finds a GPU")
	fs.IntVar(&o.hubClients, "hub-clients", hubload.TargetClients, "WebSocket clients in the hub benchmark (0 skips it)")
	fs.IntVar(&o.hubRuns, "hub-runs", 0, "hub benchmark: training runs without and with the clients, each, per path (default 5, quick 1)")
	hubPaths := fs.String("hub-paths", strings.Join(hubload.Paths, ","), "hub benchmark: the paths compared, interleaved: log (ws.Server on embedded JetStream, as kairoscope serve), memory (ws/hub fed by the worker), fastapi (the seed's FastAPI + uvicorn stack, peers/fastapi_hub.py)")
	fs.IntVar(&o.hubStartRuns, "hub-start-runs", -1, "hub benchmark: runs from POST /api/runs to the first epoch_metrics, local and through an agent, each (default 3, quick 1; 0 skips them)")
	fs.BoolVar(&o.hubPin, "hub-pin", true, "hub benchmark: pin the server (with its worker) and the clients to separate halves of the CPUs with taskset, when it is installed and there are two CPUs")
	fs.StringVar(&o.hubProfile, "hub-profile", "", "hub benchmark: write the loaded runs' server and clients CPU profiles to this folder")
	fs.IntVar(&o.forecastRuns, "forecast-runs", -1, "forecast benchmark: predict runs a side on each series (default 3; quick 0, skipped: the reference takes about a minute on 5,700 days)")
	fs.StringVar(&o.forecastRef, "forecast-ref", DefaultForecastRef, "forecast benchmark: the git revision whose predict is the reference")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.forecastRuns < 0 {
		o.forecastRuns = 3
		if o.quick {
			o.forecastRuns = 0
		}
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.runs == 0 {
		o.runs = 5
		if o.quick {
			o.runs = 3
		}
	}
	if o.runs < 1 {
		return nil, fmt.Errorf("-runs %d: need at least one", o.runs)
	}
	o.torchDevice, o.torchModes = "cpu", "step"
	if o.hubRuns == 0 {
		o.hubRuns = 5
		if o.quick {
			o.hubRuns = 1
		}
	}
	if o.hubStartRuns < 0 {
		o.hubStartRuns = 3
		if o.quick {
			o.hubStartRuns = 1
		}
	}
	if o.hubRuns < 1 || o.hubClients < 0 {
		return nil, fmt.Errorf("-hub-runs %d, -hub-clients %d: need at least one run and no negative count", o.hubRuns, o.hubClients)
	}
	for _, p := range strings.Split(*hubPaths, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !slices.Contains(hubload.Paths, p) {
			return nil, fmt.Errorf("-hub-paths: unknown path %q (want some of %s)", p, strings.Join(hubload.Paths, ","))
		}
		o.hubPaths = append(o.hubPaths, p)
	}
	if len(o.hubPaths) == 0 {
		return nil, errors.New("-hub-paths: name at least one path")
	}
	if o.only == kindHub && o.hubClients == 0 {
		return nil, errors.New("-only hub with -hub-clients 0 leaves nothing to run")
	}
	if o.blas != "auto" && o.blas != "openblas" && o.blas != "gonum" {
		return nil, fmt.Errorf("-blas %q: want auto, openblas or gonum", o.blas)
	}
	return o, nil
}

// Run is the bench command: it builds the benchmark binary, times every
// configuration on the CPU engine, the GPU engine where there is a GPU,
// and the PyTorch peer, interleaved, then measures the hub with
// -hub-clients clients during training runs (package hubload), prints the
// table to stdout (progress to stderr) and writes the results file. It runs
// from anywhere inside the module.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	start := time.Now()
	dir, err := packageDir(ctx, o)
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = filepath.Join(dir, "results", mode(o)+".json")
	}
	tmp, err := os.MkdirTemp("", "kairoscope-bench-")
	if err != nil {
		return fmt.Errorf("benchmarks: %w", err)
	}
	defer os.RemoveAll(tmp)

	res := &Results{Schema: Schema, Mode: mode(o), Started: start.UTC().Truncate(time.Second), Machine: machine(o)}
	res.Method = Method{
		Runs: o.runs, WarmupEpochs: 1, TorchThreads: 1,
		Order:     "interleaved per configuration: Kairoscope, PyTorch, Kairoscope, ... (each run a fresh process)",
		Statistic: "median over runs of each run's mean seconds per timed epoch; peak RSS is the largest run's VmHWM, which each process reads itself",
		Data:      fmt.Sprintf("the same files on both sides: x ~ N(0,1) [rows, %d] float32, r = 0 with probability 1/2 else Exp(1), seed %d", Features, DataSeed),
		LastBatch: "one step on both sides: Kairoscope pads it to the batch size with zero-weight rows, PyTorch runs it short",
	}

	b := &bench{o: o, dir: dir, tmp: tmp, stderr: stderr}
	fmt.Fprintf(stderr, "building the benchmark binary (%s)\n", o.blas)
	main, pure, err := b.buildCPU(ctx)
	if err != nil {
		return err
	}
	res.Machine.Engine = main
	if b.pureBin != "" {
		res.Machine.PureGo = &pure
	}
	res.Machine.Torch, res.Machine.TorchUnavailable = b.torchVersion(ctx)
	res.GPU = b.detectGPU(ctx)
	if !res.GPU.Available {
		fmt.Fprintln(stderr, "no GPU: counting the GPU engine's device work on the emulator")
		ec, err := CountEmulator(ctx, Default)
		if err != nil {
			return err
		}
		res.GPU.Emulator = ec
	}

	configs := Configs(o.quick)
	if o.only == kindHub || o.only == kindForecast {
		configs = nil
	} else if o.only != "" {
		var keep []Config
		for _, c := range configs {
			if c.Kind == o.only {
				keep = append(keep, c)
			}
		}
		if len(keep) == 0 {
			return fmt.Errorf("-only %q matches no configuration", o.only)
		}
		configs = keep
	}
	written := map[int]bool{}
	for _, c := range configs {
		if !written[c.Rows] {
			if err := WriteData(tmp, c.Rows); err != nil {
				return err
			}
			written[c.Rows] = true
		}
		cr, err := b.config(ctx, c, res)
		if err != nil {
			return err
		}
		res.Configs = append(res.Configs, *cr)
	}
	if o.forecastRuns > 0 && (o.only == "" || o.only == kindForecast) {
		if res.Forecast, err = b.forecast(ctx, filepath.Dir(dir)); err != nil {
			return err
		}
	}
	if o.hubClients > 0 && (o.only == "" || o.only == kindHub) {
		if res.Hub, err = b.hub(ctx); err != nil {
			return err
		}
	}
	res.Seconds = time.Since(start).Seconds()
	printTable(stdout, res)
	if err := writeResults(o.out, res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote %s\n", relPath(o.out))
	return nil
}

// kindHub and kindForecast are -only's names for the hub and the forecast
// benchmarks.
const (
	kindHub      = "hub"
	kindForecast = "forecast"
)

func mode(o *options) string {
	if o.quick {
		return "quick"
	}
	return "full"
}

// config runs c's interleaved runs.
func (b *bench) config(ctx context.Context, c Config, res *Results) (*ConfigResult, error) {
	epochs := c.Epochs(b.o.quick)
	var ks, ps, gs, ts []run
	for i := 0; i < b.o.runs; i++ {
		k, err := b.kairoscope(ctx, b.cpuBin, "BenchmarkEpoch", c, epochs)
		if err != nil {
			return nil, err
		}
		ks = append(ks, k)
		line := fmt.Sprintf("%-7s %s  run %d/%d  kairoscope %.4f s/epoch", c.Kind, c.Name(), i+1, b.o.runs, k.sPerEpoch)
		if b.pureBin != "" && c.Kind == KindDefault {
			p, err := b.kairoscope(ctx, b.pureBin, "BenchmarkEpoch", c, epochs)
			if err != nil {
				return nil, err
			}
			ps = append(ps, p)
			line += fmt.Sprintf("  pure-go %.4f s/epoch", p.sPerEpoch)
		}
		if res.GPU.Available {
			g, err := b.kairoscope(ctx, b.gpuBin, "BenchmarkEpochGPU", c, epochs)
			if err != nil {
				return nil, err
			}
			gs = append(gs, g)
			line += fmt.Sprintf("  gpu %.4f s/epoch", g.sPerEpoch)
		}
		if res.Machine.Torch != "" {
			t, err := b.torch(ctx, c, epochs)
			if err != nil {
				return nil, err
			}
			ts = append(ts, t)
			line += fmt.Sprintf("  torch %.4f s/epoch", t.sPerEpoch)
		}
		fmt.Fprintln(b.stderr, line)
	}
	cr := &ConfigResult{Config: c, Steps: c.Steps(), Epochs: epochs,
		Kairoscope: summarise(ks, c.Rows), PureGo: summarise(ps, c.Rows), GPU: summarise(gs, c.Rows), Torch: summarise(ts, c.Rows)}
	if cr.Torch != nil && cr.Torch.SPerEpoch > 0 {
		cr.Ratio = cr.Kairoscope.SPerEpoch / cr.Torch.SPerEpoch
		if cr.PureGo != nil {
			cr.PureGoRatio = cr.PureGo.SPerEpoch / cr.Torch.SPerEpoch
		}
		if cr.GPU != nil {
			cr.GPURatio = cr.GPU.SPerEpoch / cr.Torch.SPerEpoch
		}
	}
	return cr, nil
}

func writeResults(path string, res *Results) error {
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("benchmarks: encoding results: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("benchmarks: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("benchmarks: writing results: %w", err)
	}
	return nil
}

// relPath shows path relative to the working directory when it is inside it.
func relPath(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if r, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// machine describes this machine (BLAS and PyTorch are filled in later).
func machine(o *options) Machine {
	m := Machine{CPU: cpuModel(), Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(), Python: o.python}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
