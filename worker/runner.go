package worker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Devices a job may ask for.
const (
	DeviceAuto = "auto" // the GPU worker when installed, else (or when it fails to start) the CPU worker
	DeviceCPU  = "cpu"
	DeviceGPU  = "gpu" // the GPU worker or a training_error, never a silent fallback
)

// Command starts one kind of worker.
type Command struct {
	Device string   // DeviceCPU or DeviceGPU
	Path   string   // the executable
	Args   []string // e.g. ["worker"]
	Env    []string // added to the server's environment
}

// Runner runs jobs in worker processes. Its zero value is not usable: set
// CPU at least. It is safe for concurrent use; each Run starts its own
// process.
type Runner struct {
	CPU Command
	GPU *Command // nil when no GPU worker is installed
	Log zerolog.Logger
	// KillGrace is how long a cancelled worker has between SIGTERM and
	// SIGKILL (default 5 s).
	KillGrace time.Duration
	// MaxSilence is how long a worker may write nothing on stdout (no
	// message, not even the empty keepalive line Output writes while the
	// job makes progress) before it is presumed hung: it is stopped as a
	// cancelled one is and the job fails with an *ExitError matching
	// ErrSilent. Default DefaultMaxSilence; negative: no limit.
	MaxSilence time.Duration
	// LogLines is how many stderr lines a second a worker may have relayed
	// to the log (default DefaultLogLines, in bursts of as many); beyond it
	// lines are counted, not logged, and one "worker stderr flood" entry a
	// second says how many were dropped. The last lines still say why a
	// worker died. Negative: no limit.
	LogLines int
	// OrphanAfter, when positive, has every worker stop itself (exit
	// status ExitOrphaned, an *ExitError matching ErrOrphaned) once this
	// process has not written on its descriptor BeatFD for that long:
	// Run writes a beat every OrphanAfter/4. An agent sets it to its
	// lease, so that the workers of an agent frozen past its lease (SIGSTOP, a hung
	// host) stop when another agent may take their runs, rather than
	// train on, holding a CPU or a GPU's memory, for output nobody reads.
	OrphanAfter time.Duration
}

// Defaults of Runner's limits.
const (
	DefaultMaxSilence = 10 * time.Minute
	DefaultLogLines   = 200
)

// ErrSilent is matched by the error of a worker stopped for writing
// nothing for Runner.MaxSilence.
var ErrSilent = errors.New("worker wrote nothing for too long")

// ErrNoGPUWorker is returned for DeviceGPU when no GPU worker is installed.
var ErrNoGPUWorker = errors.New("no GPU worker installed")

// ExitError is a worker that ended badly: a non-zero status, a signal, or
// output that breaks the protocol.
type ExitError struct {
	Device string
	Status int    // exit status, -1 when killed by a signal
	Signal string // the signal's name, when killed by one
	Stderr string // the last lines the worker logged
	Err    error  // a protocol error, if that is what ended it
}

func (e *ExitError) Error() string {
	var what string
	switch {
	case e.Err != nil:
		what = e.Err.Error()
	case e.Signal != "":
		what = "killed by signal " + e.Signal
	default:
		what = fmt.Sprintf("exited with status %d", e.Status)
	}
	msg := fmt.Sprintf("%s worker %s", e.Device, what)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

func (e *ExitError) Unwrap() error { return e.Err }

// maxLine bounds one message: a prediction_delta of a long fold is the
// largest, about 200 bytes a row.
const maxLine = 16 << 20

// Run runs spec on the device it names (DeviceAuto when empty), calling
// emit with each message, one JSON object, in order, from the calling
// goroutine's point of view serially. It returns nil when the worker exits
// cleanly, ctx.Err() when cancelled, or an *ExitError.
func (r *Runner) Run(ctx context.Context, spec Spec, device string, emit func(msg []byte)) error {
	switch device {
	case DeviceCPU:
		_, err := r.exec(ctx, r.CPU, spec, emit)
		return err
	case DeviceGPU:
		if r.GPU == nil {
			return fmt.Errorf("%w: --device gpu needs kairoscope-cuda next to kairoscope or in $KAIROSCOPE_CUDA_WORKER", ErrNoGPUWorker)
		}
		_, err := r.exec(ctx, *r.GPU, spec, emit)
		return err
	case DeviceAuto, "":
		if r.GPU == nil {
			_, err := r.exec(ctx, r.CPU, spec, emit)
			return err
		}
		started, err := r.exec(ctx, *r.GPU, spec, emit)
		if err == nil || started || ctx.Err() != nil {
			return err
		}
		// The GPU worker died before its first message (no device, no
		// driver, a missing library): the CPU worker takes the job.
		r.Log.Warn().Err(err).Msg("GPU worker failed to start; running the job on the CPU")
		spec.FallbackReason = err.Error()
		_, err = r.exec(ctx, r.CPU, spec, emit)
		return err
	}
	return fmt.Errorf("unknown device %q (want auto, cpu or gpu)", device)
}

// exec runs one worker; started says whether it wrote any message.
func (r *Runner) exec(ctx context.Context, c Command, spec Spec, emit func([]byte)) (started bool, err error) {
	if r.OrphanAfter > 0 {
		spec.OrphanAfterMS = max(r.OrphanAfter.Milliseconds(), 1)
	}
	in, err := json.Marshal(spec)
	if err != nil {
		return false, err
	}
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env = append(cmd.Environ(), c.Env...)
	cmd.Stdin = bytes.NewReader(in)
	// The worker leads a process group of its own, so that stopping it
	// stops whatever it started too, and it dies with this process.
	cmd.SysProcAttr = workerProcAttr()
	grace := r.KillGrace
	if grace == 0 {
		grace = 5 * time.Second
	}
	// Cancelled: SIGTERM to the group, SIGKILL to the group after grace;
	// Wait then verifies the exit.
	cmd.Cancel = func() error {
		pid := cmd.Process.Pid
		time.AfterFunc(grace, func() { signalGroup(pid, syscall.SIGKILL) })
		return signalGroup(pid, syscall.SIGTERM)
	}
	cmd.WaitDelay = grace + time.Second // the pipes, should a grandchild hold them
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return false, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return false, err
	}
	var beats *os.File
	if r.OrphanAfter > 0 {
		// On a descriptor of their own: stdin still ends after the spec,
		// for a worker that reads it to its end.
		pr, pw, err := os.Pipe()
		if err != nil {
			return false, err
		}
		cmd.ExtraFiles, beats = []*os.File{pr}, pw
	}
	err = cmd.Start()
	for _, f := range cmd.ExtraFiles {
		f.Close() // the worker's end, now the worker's alone
	}
	if err != nil {
		if beats != nil {
			beats.Close()
		}
		return false, &ExitError{Device: c.Device, Status: -1, Err: err}
	}
	if beats != nil {
		done := make(chan struct{})
		defer close(done)
		go feedBeats(beats, r.OrphanAfter/4, done)
	}
	log := r.Log.With().Str("worker", c.Device).Int("pid", cmd.Process.Pid).Logger()
	tail := make(chan string, 1)
	go func() { tail <- relayLogs(stderr, log, r.logLines()) }()
	watch := r.watchSilence(cmd.Process.Pid, grace)
	defer watch.stop()

	started, protoErr := readMessages(stdout, watch.heard, emit)
	if protoErr != nil {
		cmd.Process.Kill()
	}
	io.Copy(io.Discard, stdout) // unblock a worker still writing after a protocol error
	watch.heard()               // it has MaxSilence more to exit
	waitErr := cmd.Wait()
	last := <-tail
	if ctx.Err() != nil {
		return started, ctx.Err()
	}
	if watch.fired() && protoErr == nil {
		protoErr = fmt.Errorf("%w: no message for %v (the workers' silence limit, --worker-silence): stopped it", ErrSilent, watch.limit)
	}
	if protoErr == nil && waitErr == nil {
		return started, nil
	}
	e := &ExitError{Device: c.Device, Status: -1, Stderr: last, Err: protoErr}
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		e.Status = ee.ExitCode()
		if e.Status == ExitOrphaned && e.Err == nil {
			e.Err = ErrOrphaned
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Signal = ws.Signal().String()
		}
	} else if waitErr != nil && e.Err == nil {
		e.Err = waitErr
	}
	return started, e
}

// readMessages reads a worker's stdout: each line one JSON object, passed
// to emit (a copy), in order; empty lines are keepalives. heard is told of
// every line. It stops at the end of r, or at the first line that breaks
// the protocol (not a JSON object, or longer than maxLine), and returns
// whether any message came and that error.
func readMessages(r io.Reader, heard func(), emit func([]byte)) (started bool, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		heard()
		line := sc.Bytes()
		if len(line) == 0 {
			continue // a keepalive (Output.KeepAlive)
		}
		if line[0] != '{' || !json.Valid(line) {
			// Often the worker's own last word: gorgonia.org/cu's init prints
			// why CUDA failed (NoDevice) on stdout before exiting.
			return started, fmt.Errorf("wrote a line that is not a JSON object: %s", clip(string(line), 300))
		}
		started = true
		emit(append([]byte(nil), line...))
	}
	if err := sc.Err(); err != nil {
		return started, fmt.Errorf("reading its output: %w", err)
	}
	return started, nil
}

// relayLogs re-logs the worker's stderr and returns what says why a worker
// died: a Go panic's first line, else the last lines. zerolog JSON lines
// keep their message; anything else (cu's init message) passes as text. A
// line longer than maxLogLine is cut there (the rest is skipped, never
// buffered), so no line stops the relay or blocks the worker; perSecond
// bounds what reaches the log (see Runner.LogLines).
func relayLogs(r io.Reader, log zerolog.Logger, perSecond int) string {
	const keep = 3
	var last []string
	var crash string
	flood := newLogGate(perSecond, log)
	defer flood.close()
	lines := newLineReader(r, maxLogLine)
	for {
		b, cut, err := lines.next()
		if err != nil {
			break
		}
		line := string(b)
		if strings.TrimSpace(line) == "" {
			continue
		}
		var entry struct {
			Level   string `json:"level"`
			Message string `json:"message"`
			Error   string `json:"error"`
		}
		text := line
		relay := flood.admit()
		if cut == 0 && json.Unmarshal(b, &entry) == nil && entry.Message != "" {
			text = entry.Message
			if entry.Error != "" {
				text += ": " + entry.Error
			}
			if relay {
				log.WithLevel(parseLevel(entry.Level)).RawJSON("entry", b).Msg("worker log")
			}
		} else if relay {
			ev := log.Warn().Str("line", line)
			if cut > 0 {
				ev = ev.Int64("cut_bytes", cut)
			}
			ev.Msg("worker stderr")
		}
		if crash == "" && (strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ")) {
			crash = line
		}
		last = append(last, clip(text, 1000))
		if len(last) > keep {
			last = last[1:]
		}
	}
	io.Copy(io.Discard, r) // a read error: still never block the worker
	if crash != "" {
		return crash
	}
	return strings.Join(last, " | ")
}

func parseLevel(s string) zerolog.Level {
	if l, err := zerolog.ParseLevel(s); err == nil && s != "" {
		return l
	}
	return zerolog.InfoLevel
}

// clip shortens s to at most n bytes, marking the cut.
func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
