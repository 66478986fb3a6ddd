package benchmarks

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// TorchModes are the ways the GPU check runs the PyTorch peer on CUDA, in
// one process per run (peers/torch_mlp.py --modes): TorchEpoch first, the
// one compared (the loss summed on the device and read once an epoch, as
// Kairoscope's GPU engine does), then a host sync every step, then the
// whole step captured as a CUDA graph.
const (
	TorchEpoch = "epoch"
	TorchStep  = "step"
	TorchGraph = "graph"
)

// TorchModes lists them in the order the peer runs them.
var TorchModes = []string{TorchEpoch, TorchStep, TorchGraph}

// GPUCheckOptions configures GPUCheck.
type GPUCheckOptions struct {
	GPUBin  string   // the GPU benchmarks, built elsewhere: go test -c -tags gpu ./benchmarks
	Python  string   // a Python whose torch has CUDA
	Peers   string   // the folder of torch_mlp.py
	Configs []Config // default: Configs(false)
	Runs    int      // a side and configuration (default 3)
	// Deadline: no run starts that would, at the pace of the same
	// configuration's earlier runs, end after it; rounds go over every
	// configuration in turn, so a short budget still gives each one run.
	Deadline time.Time
	Timeout  time.Duration // per process (default 2 minutes)
	Log      io.Writer     // progress
}

// GPUCheckRow is one configuration's GPU and PyTorch-on-CUDA runs.
type GPUCheckRow struct {
	Config
	Steps  int              `json:"steps_per_epoch"`
	Epochs int              `json:"epochs"`
	GPU    *Side            `json:"kairoscope_gpu,omitempty"`
	Torch  map[string]*Side `json:"torch_cuda,omitempty"` // by mode
	// Ratio is the GPU engine's median s/epoch over PyTorch's in
	// TorchEpoch mode (< 1: faster).
	Ratio  float64  `json:"ratio,omitempty"`
	Errors []string `json:"errors,omitempty"` // runs that failed or were skipped, and why
}

// GPUCheck times each configuration's epochs on the GPU engine (the
// prebuilt BenchmarkEpochGPU, each run a fresh process) and in PyTorch on
// CUDA, interleaved, on the same data files, without a Go toolchain: it is
// what benchmarks/cmd/gpucheck runs on a GPU machine. A failed run is
// recorded in its row and the others go on; the error is for setup only.
func GPUCheck(ctx context.Context, o GPUCheckOptions) ([]GPUCheckRow, error) {
	if o.Configs == nil {
		o.Configs = Configs(false)
	}
	if o.Runs < 1 {
		o.Runs = 3
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	tmp, err := os.MkdirTemp("", "kairoscope-gpucheck-data-")
	if err != nil {
		return nil, fmt.Errorf("benchmarks: %w", err)
	}
	defer os.RemoveAll(tmp)
	written := map[int]bool{}
	for _, c := range o.Configs {
		if !written[c.Rows] {
			if err := WriteData(tmp, c.Rows); err != nil {
				return nil, err
			}
			written[c.Rows] = true
		}
	}
	b := &bench{o: &options{timeout: o.Timeout, python: o.Python, torchDevice: "cuda",
		torchModes: strings.Join(TorchModes, ",")}, dir: o.Peers, tmp: tmp, stderr: o.Log}

	rows := make([]GPUCheckRow, len(o.Configs))
	gpuRuns := make([][]run, len(o.Configs))
	torchRuns := make([]map[string][]run, len(o.Configs))
	pace := make([]time.Duration, len(o.Configs)) // the last round's time, a run a side
	for i, c := range o.Configs {
		rows[i] = GPUCheckRow{Config: c, Steps: c.Steps(), Epochs: c.Epochs(false)}
		torchRuns[i] = map[string][]run{}
	}
	for round := 1; round <= o.Runs; round++ {
		for i, c := range o.Configs {
			row := &rows[i]
			if !o.Deadline.IsZero() && time.Now().Add(pace[i]).After(o.Deadline) {
				row.Errors = append(row.Errors, fmt.Sprintf("run %d skipped: the check's time budget is spent", round))
				continue
			}
			start := time.Now()
			line := fmt.Sprintf("%-7s %s  run %d/%d", c.Kind, c.Name(), round, o.Runs)
			if g, err := b.kairoscope(ctx, o.GPUBin, "BenchmarkEpochGPU", c, row.Epochs); err != nil {
				row.Errors = append(row.Errors, fmt.Sprintf("GPU run %d: %v", round, err))
				line += "  gpu failed"
			} else {
				gpuRuns[i] = append(gpuRuns[i], g)
				line += fmt.Sprintf("  gpu %.5f s/epoch", g.sPerEpoch)
			}
			if t, err := b.torch(ctx, c, row.Epochs); err != nil {
				row.Errors = append(row.Errors, fmt.Sprintf("PyTorch run %d: %v", round, err))
				line += "  torch failed"
			} else {
				for m, r := range t.modes {
					torchRuns[i][m] = append(torchRuns[i][m], r)
				}
				for _, e := range t.modeErrs {
					if !slices.Contains(row.Errors, e) {
						row.Errors = append(row.Errors, e)
					}
				}
				line += fmt.Sprintf("  torch %.5f s/epoch", t.sPerEpoch)
			}
			pace[i] = time.Since(start)
			fmt.Fprintln(o.Log, line)
			if ctx.Err() != nil {
				return rows, ctx.Err()
			}
		}
	}
	for i, c := range o.Configs {
		row := &rows[i]
		row.GPU = summarise(gpuRuns[i], c.Rows)
		for _, m := range slices.Sorted(maps.Keys(torchRuns[i])) {
			if row.Torch == nil {
				row.Torch = map[string]*Side{}
			}
			row.Torch[m] = summarise(torchRuns[i][m], c.Rows)
		}
		if t := row.Torch[TorchEpoch]; t != nil && row.GPU != nil && t.SPerEpoch > 0 {
			row.Ratio = row.GPU.SPerEpoch / t.SPerEpoch
		}
	}
	return rows, nil
}
