package benchmarks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// bench holds a run's binaries and paths.
type bench struct {
	o              *options
	dir            string // the package's directory (peers/, results/)
	tmp            string // binaries and data files
	cpuBin, gpuBin string
	pureBin        string // the pure-Go build, when cpuBin links OpenBLAS
	cpuTags        string // the tags cpuBin was built with
	stderr         io.Writer
}

// command runs name with args under the run's per-process limit and
// returns its stdout and its process state. A non-zero exit is an error
// carrying the end of stderr.
func (b *bench) command(ctx context.Context, env []string, dir, name string, args ...string) ([]byte, *os.ProcessState, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("killed after %v (-timeout)", b.o.timeout)
	}
	if err != nil {
		msg := strings.TrimSpace(tail(errb.String()+out.String(), 2000))
		return out.Bytes(), cmd.ProcessState, fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, msg)
	}
	return out.Bytes(), cmd.ProcessState, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// packageDir finds this package's source directory with go list.
func packageDir(ctx context.Context, o *options) (string, error) {
	b := &bench{o: o}
	out, _, err := b.command(ctx, nil, "", o.goCmd, "list", "-f", "{{.Dir}}", "github.com/kairoscope/kairoscope/benchmarks")
	if err != nil {
		return "", fmt.Errorf("benchmarks: finding the package (run inside the module): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Engine is what a built benchmark binary's CPU engine runs on.
type Engine struct {
	BLAS string `json:"blas"` // the GEMMs' implementation
	Exec string `json:"exec"` // what runs a training step (model.Net.Exec)
}

// buildCPU builds the test binary the CPU runs use: with -blas auto,
// OpenBLAS when the openblas tag builds, else gonum; with OpenBLAS it also
// builds the pure-Go binary (no tag, what `make build` ships without libopenblas-dev), which runs
// the default configuration as a third side.
func (b *bench) buildCPU(ctx context.Context) (main, pure Engine, err error) {
	b.cpuBin = filepath.Join(b.tmp, "benchmarks.test")
	if b.o.blas != "gonum" {
		err := b.build(ctx, b.cpuBin, "openblas")
		if err == nil {
			b.cpuTags = "openblas"
			if main, err = b.engine(ctx, b.cpuBin); err != nil {
				return main, pure, err
			}
			b.pureBin = filepath.Join(b.tmp, "benchmarks-purego.test")
			if err := b.build(ctx, b.pureBin, ""); err != nil {
				return main, pure, err
			}
			pure, err = b.engine(ctx, b.pureBin)
			return main, pure, err
		}
		if b.o.blas == "openblas" {
			return main, pure, err
		}
		fmt.Fprintf(b.stderr, "OpenBLAS unavailable (%v); using gonum's pure-Go BLAS\n", firstLine(err.Error()))
	}
	if err := b.build(ctx, b.cpuBin, ""); err != nil {
		return main, pure, err
	}
	main, err = b.engine(ctx, b.cpuBin)
	return main, pure, err
}

func (b *bench) build(ctx context.Context, out, tags string) error {
	args := []string{"test", "-c", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	if _, _, err := b.command(ctx, nil, b.dir, b.o.goCmd, append(args, ".")...); err != nil {
		return fmt.Errorf("benchmarks: building the benchmarks (tags %q): %w", tags, err)
	}
	return nil
}

// engine asks the built binary what its CPU engine runs on
// (TestPrintEngine).
func (b *bench) engine(ctx context.Context, bin string) (Engine, error) {
	out, _, err := b.command(ctx, nil, b.tmp, bin, "-test.run=^TestPrintEngine$", "-test.v")
	if err != nil {
		return Engine{}, err
	}
	var e Engine
	for _, line := range strings.Split(string(out), "\n") {
		if _, v, ok := strings.Cut(line, "BLAS: "); ok {
			e.BLAS = strings.TrimSpace(v)
		}
		if _, v, ok := strings.Cut(line, "Exec: "); ok {
			e.Exec = strings.TrimSpace(v)
		}
	}
	if e.BLAS == "" || e.Exec == "" {
		return e, fmt.Errorf("benchmarks: TestPrintEngine printed no BLAS or Exec line:\n%s", out)
	}
	return e, nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// kairoscope runs one configuration of bench in a fresh process of bin.
func (b *bench) kairoscope(ctx context.Context, bin, bench string, c Config, epochs int) (run, error) {
	out, ps, err := b.command(ctx, nil, b.tmp, bin,
		"-test.run=^$", "-test.bench=^"+bench+"$/^"+regexp.QuoteMeta(c.Name())+"$",
		"-test.benchtime="+strconv.Itoa(epochs)+"x", "-test.count=1", "-benchmarks.data="+b.tmp)
	if err != nil {
		return run{}, err
	}
	m, err := parseBench(out, bench+"/"+c.Name())
	if err != nil {
		return run{}, err
	}
	rss := int64(m["peak-RSS-B"])
	if rss == 0 {
		rss = peakRSS(ps)
	}
	return run{sPerEpoch: m["s/epoch"], loss: m["loss"], rss: rss, deviceBytes: int64(m["device-B"]),
		allocs: m["allocs/op"], bytesPerEpoch: m["B/op"]}, nil
}

// parseBench reads the metrics of benchmark name from go test -bench output:
// "name-2  20  72658061 ns/op  0.0726 s/epoch ...  17691799 B/op  11304 allocs/op".
func parseBench(out []byte, name string) (map[string]float64, error) {
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || (f[0] != name && !strings.HasPrefix(f[0], name+"-")) {
			continue
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmarks: parsing %q: %w", line, err)
			}
			m[f[i+1]] = v
		}
		if m["s/epoch"] <= 0 {
			return nil, fmt.Errorf("benchmarks: no s/epoch in %q", line)
		}
		return m, nil
	}
	return nil, fmt.Errorf("benchmarks: no result line for %s in:\n%s", name, tail(string(out), 2000))
}

// torchEnv keeps PyTorch on one thread: OpenBLAS's own pool and OpenMP
// oversubscribe the cores otherwise (see the notes).
var torchEnv = []string{"OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1"}

// torchVersion checks that the peer's Python imports torch.
func (b *bench) torchVersion(ctx context.Context) (version, unavailable string) {
	out, _, err := b.command(ctx, torchEnv, b.tmp, b.o.python, "-c", "import torch; print(torch.__version__)")
	if err != nil {
		reason := firstLine(err.Error())
		if lines := strings.Split(strings.TrimSpace(err.Error()), "\n"); len(lines) > 1 {
			reason = lines[len(lines)-1] + " (" + b.o.python + ")"
		}
		fmt.Fprintf(b.stderr, "PyTorch unavailable: %s\n", reason)
		return "", reason
	}
	return strings.TrimSpace(string(out)), ""
}

// torch runs the PyTorch peer on c.
func (b *bench) torch(ctx context.Context, c Config, epochs int) (run, error) {
	out, ps, err := b.command(ctx, torchEnv, b.tmp, b.o.python, filepath.Join(b.dir, "peers", "torch_mlp.py"),
		"--rows", strconv.Itoa(c.Rows), "--hidden", strconv.Itoa(c.Hidden), "--batch", strconv.Itoa(c.Batch),
		"--epochs", strconv.Itoa(epochs), "--warmup", "1", "--threads", "1", "--data", b.tmp,
		"--device", b.o.torchDevice, "--modes", b.o.torchModes)
	if err != nil {
		return run{}, err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var r struct {
		SPerEpoch   float64 `json:"s_per_epoch"`
		Loss        float64 `json:"loss"`
		Steps       int     `json:"steps_per_epoch"`
		PeakRSS     int64   `json:"peak_rss_bytes"`
		DeviceBytes int64   `json:"device_bytes"`
		Modes       map[string]struct {
			SPerEpoch float64 `json:"s_per_epoch"`
			Loss      float64 `json:"loss"`
			Error     string  `json:"error"`
		} `json:"modes"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil || r.SPerEpoch <= 0 {
		return run{}, fmt.Errorf("benchmarks: the PyTorch peer printed %q (%v)", lines[len(lines)-1], err)
	}
	if r.Steps != c.Steps() {
		return run{}, fmt.Errorf("benchmarks: the PyTorch peer took %d steps per epoch, Kairoscope %d", r.Steps, c.Steps())
	}
	if r.PeakRSS == 0 {
		r.PeakRSS = peakRSS(ps)
	}
	res := run{sPerEpoch: r.SPerEpoch, loss: r.Loss, rss: r.PeakRSS, deviceBytes: r.DeviceBytes}
	if len(r.Modes) > 0 {
		res.modes = map[string]run{}
		for m, v := range r.Modes {
			if v.Error != "" || v.SPerEpoch <= 0 {
				res.modeErrs = append(res.modeErrs, fmt.Sprintf("PyTorch %s mode: %s", m, v.Error))
				continue
			}
			res.modes[m] = run{sPerEpoch: v.SPerEpoch, loss: v.Loss, rss: r.PeakRSS, deviceBytes: r.DeviceBytes}
		}
	}
	return res, nil
}

// detectGPU asks nvidia-smi for a GPU and, when there is one, builds the
// GPU benchmarks (tag gpu).
func (b *bench) detectGPU(ctx context.Context) GPUReport {
	if !b.o.gpu {
		return GPUReport{Reason: "disabled with -gpu=false"}
	}
	out, _, err := b.command(ctx, nil, b.tmp, "nvidia-smi", "-L")
	if err != nil {
		reason := strings.TrimSpace(err.Error())
		if lines := strings.Split(reason, "\n"); len(lines) > 1 {
			reason = "nvidia-smi: " + lines[len(lines)-1]
		}
		return GPUReport{Reason: reason}
	}
	name := firstLine(strings.TrimSpace(string(out)))
	if !strings.HasPrefix(name, "GPU ") {
		return GPUReport{Reason: "nvidia-smi -L lists no GPU"}
	}
	b.gpuBin = filepath.Join(b.tmp, "benchmarks-gpu.test")
	tags := "gpu"
	if b.cpuTags != "" {
		tags += "," + b.cpuTags
	}
	if err := b.build(ctx, b.gpuBin, tags); err != nil {
		return GPUReport{Reason: firstLine(err.Error()), Device: name}
	}
	return GPUReport{Available: true, Device: name}
}
