package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kairoscope/kairoscope/benchmarks"
	"github.com/kairoscope/kairoscope/cuda/cublas"
)

// Statuses of a section.
const (
	pass = "PASS"
	fail = "FAIL"
	skip = "SKIP"
)

// section is one part of the report.
type section struct {
	Title   string  `json:"title"`
	Status  string  `json:"status"`
	Summary string  `json:"summary"`
	Seconds float64 `json:"seconds"`
	body    strings.Builder
}

func (s *section) printf(format string, args ...any) { fmt.Fprintf(&s.body, format, args...) }

// block adds text as a fenced block.
func (s *section) block(text string) {
	s.printf("```\n%s\n```\n\n", strings.TrimRight(text, "\n"))
}

// checker runs the check on the GPU machine. Its fields are the paths and
// commands it uses, so that a test can point them at fakes.
type checker struct {
	dir, bin, out, repo string // the prepared folder, the unpacked binaries, $OUT, the working tree
	python, nvidiaSMI   string
	start, deadline     time.Time
	logs                string // raw logs, packed into OUT/logs.tgz
	runs                int    // benchmark runs a side
	stderr              io.Writer

	env      []string // KAIROSCOPE_CUBLAS, when the soname search did not find cuBLAS
	gpuName  string   // from nvidia-smi -L
	manifest manifest
	sections []*section
	bench    []benchmarks.GPUCheckRow
	counts   []*benchmarks.EmulatorCounts
}

func runCheck(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	c := &checker{start: time.Now(), stderr: os.Stderr}
	fs.StringVar(&c.dir, "dir", ".gpucheck", "the prepared folder (make gpu-check)")
	fs.StringVar(&c.bin, "bin", "", "where the binaries of DIR/bin.tgz were unpacked")
	fs.StringVar(&c.out, "out", "", "where to write the report ($OUT)")
	fs.StringVar(&c.repo, "repo", ".", "the repository's working tree (benchmarks/peers, benchmarks/gpucheck)")
	fs.StringVar(&c.python, "python", "python3", "the Python with PyTorch on CUDA")
	fs.StringVar(&c.nvidiaSMI, "nvidia-smi", "nvidia-smi", "nvidia-smi")
	fs.IntVar(&c.runs, "runs", 3, "benchmark runs a side and configuration")
	budget := fs.Duration("budget", 7*time.Minute, "the whole check's time; the benchmark gets what the earlier parts leave")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.bin == "" || c.out == "" {
		return errors.New("run needs -bin and -out")
	}
	c.deadline = c.start.Add(*budget)
	ctx, cancel := context.WithDeadline(ctx, c.deadline)
	defer cancel()
	var err error
	if c.logs, err = os.MkdirTemp("", "kairoscope-gpucheck-logs-"); err != nil {
		return err
	}
	defer os.RemoveAll(c.logs)
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	return c.all(ctx)
}

// all runs every part in order, rewriting the report after each, so that
// a check stopped at its limit still leaves what it found.
func (c *checker) all(ctx context.Context) error {
	readJSON(filepath.Join(c.dir, manifestFile), &c.manifest)
	readJSON(filepath.Join(c.dir, countsFile), &c.counts)
	parts := []struct {
		title string
		run   func(context.Context, *section)
	}{
		{"nvidia-smi", c.nvidiaSMIPart},
		{"cuBLAS", c.cublasPart},
		{"Device suite", c.suitePart},
		{"Training run", c.trainPart},
		{"Out of memory", c.oomPart},
		{"Epoch benchmark", c.benchPart},
	}
	for _, p := range parts {
		s := &section{Title: p.title}
		c.sections = append(c.sections, s)
		fmt.Fprintf(c.stderr, "gpucheck: %s\n", p.title)
		t0 := time.Now()
		if ctx.Err() != nil {
			s.Status, s.Summary = skip, "the check's time budget was spent"
		} else {
			p.run(ctx, s)
		}
		s.Seconds = time.Since(t0).Seconds()
		fmt.Fprintf(c.stderr, "gpucheck: %s: %s (%.0f s) %s\n", p.title, s.Status, s.Seconds, s.Summary)
		if err := c.write(); err != nil {
			return err
		}
	}
	return nil
}

// command runs name with args, stdin and the check's environment, bounded
// by limit and the check's deadline; it returns stdout and stderr and saves
// them as logs/<log>.out and .err.
func (c *checker) command(ctx context.Context, limit time.Duration, log string, stdin io.Reader, name string, args ...string) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdin = stdin
	cmd.WaitDelay = 5 * time.Second
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("%s: stopped after %v: %w", filepath.Base(name), limit, ctx.Err())
	}
	if log != "" {
		os.WriteFile(filepath.Join(c.logs, log+".out"), o.Bytes(), 0o644)
		os.WriteFile(filepath.Join(c.logs, log+".err"), e.Bytes(), 0o644)
	}
	return o.Bytes(), e.Bytes(), err
}

var gpuLine = regexp.MustCompile(`^GPU \d+: (.+?)(?: \(UUID:.*\))?$`)

func (c *checker) nvidiaSMIPart(ctx context.Context, s *section) {
	full, _, err := c.command(ctx, 30*time.Second, "nvidia-smi", nil, c.nvidiaSMI)
	if err != nil {
		s.Status, s.Summary = fail, fmt.Sprintf("nvidia-smi: %v", err)
		s.block(string(full))
		return
	}
	list, _, _ := c.command(ctx, 30*time.Second, "nvidia-smi-L", nil, c.nvidiaSMI, "-L")
	query, _, _ := c.command(ctx, 30*time.Second, "nvidia-smi-query", nil, c.nvidiaSMI,
		"--query-gpu=name,driver_version,memory.total,compute_cap,clocks.max.sm", "--format=csv")
	for _, line := range strings.Split(string(list), "\n") {
		if m := gpuLine.FindStringSubmatch(strings.TrimSpace(line)); m != nil && c.gpuName == "" {
			c.gpuName = m[1]
		}
	}
	s.block(strings.TrimSpace(string(query)) + "\n\n" + strings.TrimSpace(string(full)))
	if c.gpuName == "" {
		s.Status, s.Summary = fail, "nvidia-smi -L lists no GPU"
		return
	}
	s.Status, s.Summary = pass, c.gpuName
}

// cublasPart loads cuBLAS as the worker does, through the device suite's
// TestGPUInfo: by soname first; when that finds none, the libcublas of the
// Python environment (PyTorch's), through $KAIROSCOPE_CUBLAS, which every
// later part then uses.
func (c *checker) cublasPart(ctx context.Context, s *section) {
	info, err := c.gpuInfo(ctx, "cublas-soname")
	if err == nil {
		s.Status, s.Summary = pass, "found by soname: "+info
		return
	}
	s.printf("By soname (%s): %v\n\n", strings.Join(cublas.Sonames, ", "), err)
	found, _, ferr := c.command(ctx, time.Minute, "cublas-find", nil, c.python, "-c", findCuBLAS)
	paths := cublasCandidates(string(found))
	if len(paths) == 0 {
		s.Status, s.Summary = fail, fmt.Sprintf("no cuBLAS by soname (%v), none in the Python environment (%v)", err, ferr)
		return
	}
	s.printf("Found in the Python environment: %s\n\n", strings.Join(paths, ", "))
	for _, p := range paths {
		c.env = []string{cublas.EnvPath + "=" + p}
		info, err := c.gpuInfo(ctx, "cublas-env")
		if err == nil {
			os.Setenv(cublas.EnvPath, p) // for the benchmark's processes
			s.Status, s.Summary = pass, fmt.Sprintf("not found by soname; %s=%s: %s", cublas.EnvPath, p, info)
			return
		}
		s.printf("%s=%s: %v\n\n", cublas.EnvPath, p, err)
	}
	c.env = nil
	s.Status, s.Summary = fail, "no usable cuBLAS (see above)"
}

// gpuInfo runs TestGPUInfo and returns its device line.
func (c *checker) gpuInfo(ctx context.Context, log string) (string, error) {
	out, errOut, err := c.command(ctx, time.Minute, log, nil, filepath.Join(c.bin, "devicetest.test"),
		"-test.run=^TestGPUInfo$", "-test.v")
	for _, line := range strings.Split(string(out), "\n") {
		if _, info, ok := strings.Cut(line, "device: "); ok && err == nil {
			return strings.TrimSpace(info), nil
		}
	}
	if err == nil {
		err = errors.New("TestGPUInfo printed no device line")
	}
	return "", fmt.Errorf("%w: %s", err, lastLines(string(out)+string(errOut), 6))
}

// findCuBLAS prints the libcublas.so.N files of the Python environment's
// nvidia packages and torch, and of /usr/local/cuda.
const findCuBLAS = `
import glob, os
roots = []
try:
    import nvidia
    roots += list(nvidia.__path__)
except Exception:
    pass
try:
    import torch
    roots.append(os.path.join(os.path.dirname(torch.__file__), "lib"))
except Exception:
    pass
roots += ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"]
for r in roots:
    for p in glob.glob(os.path.join(r, "**", "libcublas.so.*"), recursive=True):
        print(os.path.realpath(p) if os.path.islink(p) else p)
`

var cublasFile = regexp.MustCompile(`libcublas\.so\.(\d+)(\.[\d.]+)?$`)

// cublasCandidates keeps one file per directory and major version, newest
// major first.
func cublasCandidates(out string) []string {
	type cand struct {
		path  string
		major int
	}
	var cs []cand
	seen := map[string]bool{}
	for _, p := range strings.Fields(out) {
		m := cublasFile.FindStringSubmatch(p)
		if m == nil {
			continue
		}
		major, _ := strconv.Atoi(m[1])
		key := filepath.Dir(p) + "/" + m[1]
		if seen[key] {
			continue
		}
		seen[key] = true
		cs = append(cs, cand{p, major})
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return b.major - a.major })
	paths := make([]string, len(cs))
	for i, c := range cs {
		paths[i] = c.path
	}
	return paths
}

var subtestResult = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): TestGPU/(\S+) \(([\d.]+)s\)`)

func (c *checker) suitePart(ctx context.Context, s *section) {
	out, errOut, err := c.command(ctx, 3*time.Minute, "devicetest", nil, filepath.Join(c.bin, "devicetest.test"),
		"-test.run=^TestGPU$", "-test.v", "-test.timeout=170s")
	os.WriteFile(filepath.Join(c.out, "devicetest.txt"), append(out, errOut...), 0o644)
	var passed, failed []string
	for _, line := range strings.Split(string(out), "\n") {
		m := subtestResult.FindStringSubmatch(line)
		switch {
		case m == nil:
		case m[1] == "PASS":
			passed = append(passed, m[2])
		case m[1] == "FAIL":
			failed = append(failed, m[2])
		}
	}
	s.Summary = fmt.Sprintf("%d passed, %d failed", len(passed), len(failed))
	if len(failed) > 0 {
		s.Summary += ": " + strings.Join(failed, ", ")
	}
	s.printf("`devicetest.test -test.run=^TestGPU$ -test.v` (full output in devicetest.txt)\n\n")
	s.block(suiteLog(string(out)))
	switch {
	case err != nil && len(failed) == 0:
		s.Status, s.Summary = fail, fmt.Sprintf("%s; the suite did not finish: %v: %s", s.Summary, err, lastLines(string(out)+string(errOut), 3))
	case err != nil || len(failed) > 0 || len(passed) == 0:
		s.Status = fail
	default:
		s.Status = pass
	}
}

// suiteLog keeps the suite's result lines and what failing tests logged,
// and the tolerances reached by passing ones (their t.Log lines).
func suiteLog(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "=== RUN") || t == "" {
			continue
		}
		keep = append(keep, line)
	}
	if len(keep) > 150 {
		keep = append(keep[:150], fmt.Sprintf("... %d more lines in devicetest.txt", len(keep)-150))
	}
	return strings.Join(keep, "\n")
}

// message is what the report reads of the worker's messages.
type message struct {
	Type           string          `json:"type"`
	Device         string          `json:"device"`
	FallbackReason string          `json:"fallback_reason"`
	Error          string          `json:"error"`
	ValLoss        json.RawMessage `json:"val_loss"`
	FoldID         *int            `json:"fold_id"`
}

// worker runs the GPU worker on a spec and returns its messages, the end
// of its log and its job line.
func (c *checker) worker(ctx context.Context, limit time.Duration, log, spec string) (msgs []message, raw []byte, jobLine string, err error) {
	in, err := os.Open(filepath.Join(c.dir, spec))
	if err != nil {
		return nil, nil, "", err
	}
	defer in.Close()
	out, errOut, err := c.command(ctx, limit, log, in, filepath.Join(c.bin, "kairoscope-cuda"), "worker")
	var other []string // not messages: cu's init writes why CUDA failed on stdout
	for _, line := range strings.Split(string(out), "\n") {
		var m message
		if json.Unmarshal([]byte(line), &m) == nil && m.Type != "" {
			msgs = append(msgs, m)
		} else if strings.TrimSpace(line) != "" {
			other = append(other, line)
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(errOut))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e struct {
			Message, Blas, Driver, Device string
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Message == "job" {
			jobLine = fmt.Sprintf("%s; %s; driver %s", e.Device, e.Blas, e.Driver)
		}
	}
	if err != nil {
		err = fmt.Errorf("%w: %s", err, lastLines(strings.Join(other, "\n")+"\n"+string(errOut), 4))
	}
	return msgs, errOut, jobLine, err
}

func (c *checker) trainPart(ctx context.Context, s *section) {
	t0 := time.Now()
	msgs, _, job, err := c.worker(ctx, 2*time.Minute, "train", trainSpec)
	wall := time.Since(t0)
	counts := map[string]int{}
	for _, m := range msgs {
		counts[m.Type]++
	}
	s.printf("`kairoscope-cuda worker < %s` (%s): %d messages in %.1f s: %v\n\n", trainSpec, specText(c.dir, trainSpec), len(msgs), wall.Seconds(), counts)
	if job != "" {
		s.printf("Worker log: %s\n\n", job)
	}
	last := map[int]string{} // each fold's last epoch's val_loss
	folds := []int{}
	for _, m := range msgs {
		if m.Type == "epoch_metrics" && m.FoldID != nil && len(m.ValLoss) > 0 {
			if _, ok := last[*m.FoldID]; !ok {
				folds = append(folds, *m.FoldID)
			}
			last[*m.FoldID] = string(m.ValLoss)
		}
	}
	for _, f := range folds {
		s.printf("- fold %d: last epoch's val_loss %s\n", f, last[f])
	}
	s.printf("\n")
	switch {
	case len(msgs) == 0:
		s.Status, s.Summary = fail, fmt.Sprintf("no message: %v", err)
	case msgs[0].Type != "training_start" || !strings.HasPrefix(msgs[0].Device, "gpu: ") || msgs[0].FallbackReason != "":
		s.Status, s.Summary = fail, fmt.Sprintf("first message %s, device %q, fallback_reason %q", msgs[0].Type, msgs[0].Device, msgs[0].FallbackReason)
	case c.gpuName != "" && !strings.Contains(msgs[0].Device, c.gpuName):
		s.Status, s.Summary = fail, fmt.Sprintf("training_start.device %q does not name %s", msgs[0].Device, c.gpuName)
	case msgs[len(msgs)-1].Type != "training_complete" || err != nil:
		s.Status, s.Summary = fail, fmt.Sprintf("ended with %s %s (%v)", msgs[len(msgs)-1].Type, msgs[len(msgs)-1].Error, err)
	default:
		s.Status, s.Summary = pass, fmt.Sprintf("training_start.device %q; training_complete after %d epoch_metrics in %.1f s",
			msgs[0].Device, counts["epoch_metrics"], wall.Seconds())
	}
}

// oomPart fills the GPU with PyTorch tensors but oomLeaveFree, then runs a
// job whose parameters need more: it must end in training_error with "CUDA
// out of memory", from CUDA's own allocation failure.
func (c *checker) oomPart(ctx context.Context, s *section) {
	hctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	hog := exec.CommandContext(hctx, c.python, filepath.Join(c.repo, "benchmarks", "gpucheck", "hog.py"), "--leave", strconv.Itoa(oomLeaveFree))
	hog.Env = append(os.Environ(), c.env...)
	stdin, _ := hog.StdinPipe()
	stdout, _ := hog.StdoutPipe()
	var hogErr bytes.Buffer
	hog.Stderr = &hogErr
	if err := hog.Start(); err != nil {
		s.Status, s.Summary = fail, fmt.Sprintf("starting the memory hog: %v", err)
		return
	}
	defer func() {
		stdin.Close() // the hog frees its memory and exits when its stdin closes
		done := make(chan error, 1)
		go func() { done <- hog.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			hog.Process.Kill()
			<-done
		}
	}()
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
		io.Copy(io.Discard, stdout)
	}()
	var held string
	select {
	case held = <-ready:
	case <-time.After(2 * time.Minute):
	}
	if !strings.HasPrefix(held, "{") {
		s.Status, s.Summary = fail, fmt.Sprintf("the memory hog did not fill the GPU: %q %s", held, lastLines(hogErr.String(), 4))
		return
	}
	s.printf("Memory hog (PyTorch, `benchmarks/gpucheck/hog.py`): %s\n", held)
	msgs, _, job, err := c.worker(ctx, 2*time.Minute, "oom", oomSpec)
	s.printf("`kairoscope-cuda worker < %s` (%s): %d messages\n\n", oomSpec, specText(c.dir, oomSpec), len(msgs))
	if job != "" {
		s.printf("Worker log: %s\n\n", job)
	}
	switch {
	case len(msgs) == 0:
		s.Status, s.Summary = fail, fmt.Sprintf("the worker stopped before its first message (%v)", err)
	case msgs[0].Type != "training_start" || !strings.HasPrefix(msgs[0].Device, "gpu: "):
		s.Status, s.Summary = fail, fmt.Sprintf("first message %s on device %q", msgs[0].Type, msgs[0].Device)
	default:
		last := msgs[len(msgs)-1]
		s.printf("Last message: %s %q\n\n", last.Type, last.Error)
		if last.Type == "training_error" && strings.Contains(last.Error, "CUDA out of memory") {
			s.Status, s.Summary = pass, "training_error: "+last.Error
		} else {
			s.Status, s.Summary = fail, fmt.Sprintf("ended with %s %q, want training_error with CUDA out of memory", last.Type, last.Error)
		}
	}
}

func (c *checker) benchPart(ctx context.Context, s *section) {
	logf, _ := os.Create(filepath.Join(c.logs, "bench.log"))
	defer logf.Close()
	rows, err := benchmarks.GPUCheck(ctx, benchmarks.GPUCheckOptions{
		GPUBin: filepath.Join(c.bin, "benchmarks-gpu.test"), Python: c.python,
		Peers: filepath.Join(c.repo, "benchmarks", "peers"), Runs: c.runs,
		Deadline: c.deadline.Add(-15 * time.Second), Log: io.MultiWriter(logf, c.stderr),
	})
	c.bench = rows
	if err != nil && len(rows) == 0 {
		s.Status, s.Summary = fail, err.Error()
		return
	}
	c.benchTable(s)
	ok, faster := 0, 0
	for _, r := range rows {
		if r.GPU != nil && r.Torch[benchmarks.TorchEpoch] != nil {
			ok++
			if r.Ratio <= 1 {
				faster++
			}
		}
	}
	s.Summary = fmt.Sprintf("%d of %d configurations measured; the GPU engine at most PyTorch's epoch time on %d", ok, len(rows), faster)
	s.Status = pass
	if ok < len(rows) || err != nil {
		s.Status = fail
	}
}

// benchTable prints the benchmark rows with the emulator's counts per step.
func (c *checker) benchTable(s *section) {
	s.printf("Seconds per epoch, the median of each configuration's runs (each a fresh process, GPU and PyTorch " +
		"interleaved). PyTorch on CUDA (this machine's): *epoch* reads the loss once an epoch, as Kairoscope does " +
		"(the ratio's denominator); *step* calls loss.item() every step; *graph* replays the whole step as one CUDA " +
		"graph. Launches, GEMMs and host syncs per step are counted on the emulator.\n\n")
	s.printf("| kind | rows | hidden | batch | steps | epochs | Kairoscope GPU | device mem | PyTorch epoch | PyTorch step | PyTorch graph | GPU/PyTorch | launches/step | GEMMs/step | host syncs/step |\n")
	s.printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range c.bench {
		cell := func(sd *benchmarks.Side) string {
			if sd == nil {
				return "–"
			}
			return fmt.Sprintf("%.5f", sd.SPerEpoch)
		}
		mem, ratio := "–", "–"
		if r.GPU != nil && r.GPU.DeviceBytes > 0 {
			mem = fmt.Sprintf("%.1f MiB", float64(r.GPU.DeviceBytes)/(1<<20))
		}
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("**%.2f**", r.Ratio)
		}
		launches, gemms, syncs := "–", "–", "–"
		for _, ec := range c.counts {
			if ec.Config.Kind == r.Kind && ec.Config.Hidden == r.Hidden && ec.Config.Batch == r.Batch {
				launches, gemms, syncs = fmt.Sprint(ec.PerStep.LaunchesTotal), fmt.Sprint(ec.PerStep.Gemms), fmt.Sprint(ec.PerStep.HostSyncs)
			}
		}
		s.printf("| %s | %d | %d | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Kind, r.Rows, r.Hidden, r.Batch,
			r.Steps, r.Epochs, cell(r.GPU), mem, cell(r.Torch[benchmarks.TorchEpoch]), cell(r.Torch[benchmarks.TorchStep]),
			cell(r.Torch[benchmarks.TorchGraph]), ratio, launches, gemms, syncs)
	}
	s.printf("\n")
	for _, r := range c.bench {
		for _, e := range r.Errors {
			s.printf("- %s %s: %s\n", r.Kind, r.Name(), firstLines(e, 3))
		}
	}
	if len(c.counts) > 0 {
		s.printf("\nEmulator, default model: per step %s; per epoch besides its steps %s.\n",
			c.counts[0].PerStep, c.counts[0].PerEpoch)
	}
}

// specText is a spec file's JSON on one line.
func specText(dir, spec string) string {
	b, err := os.ReadFile(filepath.Join(dir, spec))
	if err != nil {
		return err.Error()
	}
	var v any
	json.Unmarshal(b, &v)
	one, _ := json.Marshal(v)
	return "`" + string(one) + "`"
}

func readJSON(path string, v any) {
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, v)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, " ")
}
