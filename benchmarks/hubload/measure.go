package hubload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kairoscope/kairoscope/datasets"
	"github.com/kairoscope/kairoscope/schema"
)

// The hub paths Measure compares.
const (
	// PathLog is the path through the log, as `kairoscope serve` builds
	// it: ws.NewServer, embedded JetStream, a local agent.
	PathLog = "log"
	// PathMemory is the hub of package ws/hub fed directly from the
	// worker's messages, with no log in between.
	PathMemory = "memory"
	// PathFastAPI is the seed's stack: FastAPI + uvicorn
	// (peers/fastapi_hub.py) broadcasting a worker's messages.
	PathFastAPI = "fastapi"
)

// Paths are every path, in the order Measure runs them by default.
var Paths = []string{PathLog, PathMemory, PathFastAPI}

// DefaultRequest is the run measured: the 3-fold, 10-epoch run on
// the embedded bike data, on the CPU.
var DefaultRequest = schema.RunRequest{Dataset: datasets.Default, Folds: 3, Epochs: 10, Device: "cpu"}

// Options says what Measure runs. Zero fields take their defaults.
type Options struct {
	Bin     string // the hubload binary (benchmarks/cmd/hubload); required
	Worker  string // the kairoscope binary whose worker command trains; required
	Dir     string // scratch folder for the runs' reports; required
	Clients int    // connections during a loaded run (default TargetClients)
	Runs    int    // runs without and with clients, each, per path (default 3)
	// Paths to measure, in order (default Paths).
	Paths []string
	// Python runs Peer, the FastAPI peer (peers/fastapi_hub.py); without
	// Peer, or when Python cannot import fastapi and uvicorn, PathFastAPI
	// is skipped and Result.Skipped says why. Python defaults to
	// /usr/bin/python3.
	Python, Peer string
	// Request is the training run (default DefaultRequest; its empty
	// fields take DefaultRequest's dataset and device).
	Request schema.RunRequest
	// Timeout bounds one session, server start to exit (default 5 min), so
	// a stuck run fails instead of hanging.
	Timeout  time.Duration
	Progress io.Writer // a line per path and run; nil: none
	// Profile, when set, is a folder where the loaded runs' Go server and
	// clients processes write CPU profiles: server-PATH-N.pprof covers the
	// training run, clients-PATH-N.pprof the clients' reading.
	Profile string
	// NoWarmup skips the untimed warm-up run (tests).
	NoWarmup bool
	// Pinning is where the server and the clients run (default
	// DetectPinning()).
	Pinning *Pinning
}

// Measure runs an untimed warm-up run, then Runs rounds; in each, every
// path in turn runs a pair of sessions, each with a fresh server process:
// the training run with no client, then the same run with Clients clients
// connected before it starts (log alone, log loaded, memory alone, memory
// loaded, fastapi alone, ...). It fails when a run does not complete;
// lost messages are counted, not errors.
func Measure(ctx context.Context, o Options) (*Result, error) {
	if o.Bin == "" || o.Worker == "" || o.Dir == "" {
		return nil, errors.New("hubload: Options.Bin, Worker and Dir are required")
	}
	if o.Clients <= 0 {
		o.Clients = TargetClients
	}
	if o.Runs <= 0 {
		o.Runs = 3
	}
	if len(o.Paths) == 0 {
		o.Paths = Paths
	}
	if o.Python == "" {
		o.Python = "/usr/bin/python3"
	}
	if reflect.ValueOf(o.Request).IsZero() {
		o.Request = DefaultRequest
	}
	if o.Request.Dataset == "" {
		o.Request.Dataset = DefaultRequest.Dataset
	}
	if o.Request.Device == "" {
		o.Request.Device = DefaultRequest.Device
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	pin := DetectPinning()
	if o.Pinning != nil {
		pin = *o.Pinning
	}
	res := &Result{Clients: o.Clients, Runs: o.Runs, Request: o.Request, Pinning: pin,
		Method: "a fresh server process per run; one untimed warm-up run, then rounds in which every path runs alone and loaded, interleaved; " +
			"the clients connect to plain /ws before the run starts, in a process of their own, and parse every message whole as a JSON object; " +
			"latency = client receive time − the time the message was handed to the path's serving stack, wall-clock UnixNano on one machine"}
	res.Load[0] = loadAvg()
	defer func() { res.Load[1] = loadAvg() }()
	var paths []string
	for _, p := range o.Paths {
		switch {
		case !slices.Contains(Paths, p):
			return nil, fmt.Errorf("hubload: unknown path %q (want %s)", p, strings.Join(Paths, ", "))
		case p == PathFastAPI:
			if why := peerMissing(ctx, o.Python, o.Peer); why != "" {
				res.Skipped = append(res.Skipped, SkippedPath{Path: p, Reason: why})
				continue
			}
		}
		paths = append(paths, p)
	}
	if len(paths) == 0 {
		return res, nil
	}
	if !o.NoWarmup {
		if _, err := session(ctx, o, pin, paths[0], 0, 0); err != nil {
			return nil, fmt.Errorf("hubload: warm-up run: %w", err)
		}
	}
	acc := make([]pathAcc, len(paths))
	for i := range o.Runs {
		for k, p := range paths {
			alone, err := session(ctx, o, pin, p, 0, i+1)
			if err != nil {
				return nil, err
			}
			loaded, err := session(ctx, o, pin, p, o.Clients, i+1)
			if err != nil {
				return nil, err
			}
			l := acc[k].add(alone, loaded)
			if o.Progress != nil {
				fmt.Fprintf(o.Progress, "hub     %-7s run %d/%d  alone %.2f s  %d clients %.2f s  p50 %.1f ms  p99 %.1f ms  max %.1f ms  lost %d  load %s\n",
					p, i+1, o.Runs, alone.trainS, o.Clients, loaded.trainS, l.P50, l.P99, l.Max, loaded.report.Lost, loadAvg())
			}
		}
	}
	for k, p := range paths {
		res.Paths = append(res.Paths, acc[k].result(p))
	}
	return res, nil
}

// pathAcc gathers one path's sessions.
type pathAcc struct {
	first                                            *sessionResult
	all                                              []float64
	byType                                           map[string][]float64
	alone, loaded                                    []float64
	serverAlone, serverLoaded, clientsCPU            []float64
	serverAloneSys, serverLoadedSys, clientsSys      []float64
	conn, connRSS, dial, p50, p99                    []float64
	deliveries, lost, unexpected, outOfOrder, others int64
}

// add takes a pair of sessions and returns the loaded run's latency.
func (a *pathAcc) add(alone, loaded *sessionResult) Latency {
	if a.first == nil {
		a.first, a.byType = loaded, map[string][]float64{}
	}
	a.alone, a.loaded = append(a.alone, alone.trainS), append(a.loaded, loaded.trainS)
	a.serverAlone, a.serverLoaded = append(a.serverAlone, alone.serverCPU), append(a.serverLoaded, loaded.serverCPU)
	a.serverAloneSys, a.serverLoadedSys = append(a.serverAloneSys, alone.serverSys), append(a.serverLoadedSys, loaded.serverSys)
	a.clientsCPU, a.clientsSys = append(a.clientsCPU, loaded.clientsCPU), append(a.clientsSys, loaded.clientsSys)
	a.conn, a.connRSS, a.dial = append(a.conn, loaded.connBytes), append(a.connRSS, loaded.connRSS), append(a.dial, loaded.dialS)
	r := loaded.report
	a.deliveries += int64(r.Clients) * int64(r.Expected)
	a.lost, a.unexpected, a.outOfOrder, a.others = a.lost+r.Lost, a.unexpected+r.Unexpected, a.outOfOrder+r.OutOfOrder, a.others+r.Others
	var run []float64
	for k, lat := range r.LatencyUS {
		for _, us := range lat {
			if us >= 0 {
				ms := float64(us) / 1e3
				run = append(run, ms)
				a.byType[r.Types[k]] = append(a.byType[r.Types[k]], ms)
			}
		}
	}
	a.all = append(a.all, run...)
	l := latencyOf(run)
	a.p50, a.p99 = append(a.p50, l.P50), append(a.p99, l.P99)
	return l
}

func (a *pathAcc) result(path string) PathResult {
	r := a.first.report
	p := PathResult{Path: path, Stack: a.first.stack, Messages: r.Messages, MessagesPerClient: r.Expected,
		Deliveries: a.deliveries, Lost: a.lost, Unexpected: a.unexpected, OutOfOrder: a.outOfOrder, Others: a.others,
		P50: Median(a.p50), P99: Median(a.p99), RunsP50: a.p50, RunsP99: a.p99, Latency: latencyOf(a.all),
		AloneS: Median(a.alone), LoadedS: Median(a.loaded), AloneRuns: a.alone, LoadedRuns: a.loaded,
		ServerCPUAloneS: Median(a.serverAlone), ServerCPULoadedS: Median(a.serverLoaded), ClientsCPUS: Median(a.clientsCPU),
		ServerSysAloneS: Median(a.serverAloneSys), ServerSysLoadedS: Median(a.serverLoadedSys), ClientsSysS: Median(a.clientsSys),
		ConnBytes: int64(Median(a.conn)), ConnRSSBytes: int64(Median(a.connRSS)), DialS: Median(a.dial)}
	if p.AloneS > 0 {
		p.Slowdown = p.LoadedS / p.AloneS
	}
	msgs, bytes := map[string]int{}, map[string]int{}
	var order []string
	for k, t := range r.Types {
		if msgs[t] == 0 {
			order = append(order, t)
		}
		msgs[t]++
		bytes[t] += r.Bytes[k]
		p.BytesPerClient += int64(r.Bytes[k])
	}
	for _, t := range order {
		if lat := a.byType[t]; len(lat) > 0 {
			p.ByType = append(p.ByType, TypeLatency{Type: t, Messages: msgs[t], Bytes: bytes[t] / msgs[t], Latency: latencyOf(lat)})
		}
	}
	return p
}

// sessionResult is one server process's run.
type sessionResult struct {
	stack                  string  // the server's Ready.Stack
	trainS                 float64 // the run's wall time
	serverCPU, serverSys   float64 // the server's and its descendants' CPU seconds, and the kernel's share
	clientsCPU, clientsSys float64
	connBytes, connRSS     float64 // per connection, idle (connBytes -1: unknown)
	dialS                  float64
	report                 *ClientsReport // nil without clients
}

// serverCommand is the command line of path's server, whose scratch
// folder is dir.
func serverCommand(o Options, path, dir string) (string, []string) {
	if path == PathFastAPI {
		feed, _ := json.Marshal([]string{o.Bin, "feed", "-worker", o.Worker, "-reports", dir})
		return o.Python, []string{o.Peer, "--feed", string(feed), "--dir", dir}
	}
	return o.Bin, []string{"server", "-path", path, "-worker", o.Worker, "-reports", dir}
}

// sessions numbers the sessions' scratch folders.
var sessions struct {
	sync.Mutex
	n int
}

// session starts path's server, connects n clients (none when n is 0),
// runs o.Request to its end and collects what the clients received. i
// numbers the profiles of a loaded session.
func session(ctx context.Context, o Options, pin Pinning, path string, n, i int) (*sessionResult, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	sessions.Lock()
	sessions.n++
	dir := filepath.Join(o.Dir, fmt.Sprintf("%03d-%s-%d", sessions.n, path, n))
	sessions.Unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	name, srvArgs := serverCommand(o, path, dir)
	clArgs := []string{"clients"}
	if o.Profile != "" && n > 0 {
		if path != PathFastAPI {
			srvArgs = append(srvArgs, "-cpuprofile", filepath.Join(o.Profile, fmt.Sprintf("server-%s-%d.pprof", path, i)))
		}
		clArgs = append(clArgs, "-cpuprofile", filepath.Join(o.Profile, fmt.Sprintf("clients-%s-%d.pprof", path, i)))
	}
	name, srvArgs = pin.command(pin.Server, name, srvArgs...)
	srv, err := startProc(ctx, "server "+path, name, srvArgs...)
	if err != nil {
		return nil, err
	}
	defer srv.kill()
	var ready Ready
	if err := srv.recv(&ready); err != nil {
		return nil, err
	}
	res := &sessionResult{stack: ready.Stack}
	if res.stack == "" {
		res.stack = "hubload server -path " + path
	}
	var cl *proc
	if n > 0 {
		before, err := srv.ask(Command{Cmd: CmdMem})
		if err != nil {
			return nil, err
		}
		name, args := pin.command(pin.Clients, o.Bin, append(clArgs, "-addr", ready.Addr, "-n", strconv.Itoa(n))...)
		if cl, err = startProc(ctx, "clients", name, args...); err != nil {
			return nil, err
		}
		defer cl.kill()
		var c Connected
		if err := cl.recv(&c); err != nil {
			return nil, err
		}
		res.dialS = c.DialSeconds
		if _, err := srv.ask(Command{Cmd: CmdWaitClients, Clients: n}); err != nil {
			return nil, err
		}
		after, err := srv.ask(Command{Cmd: CmdMem})
		if err != nil {
			return nil, err
		}
		b, a := before.Mem, after.Mem
		res.connRSS = float64(a.RSSBytes-b.RSSBytes) / float64(n)
		res.connBytes = -1
		if a.HeapBytes >= 0 && b.HeapBytes >= 0 {
			res.connBytes = float64(a.HeapBytes+a.StackBytes-b.HeapBytes-b.StackBytes) / float64(n)
		}
	}
	r, err := srv.ask(Command{Cmd: CmdTrain, Request: o.Request})
	if err != nil {
		return nil, err
	}
	res.trainS = r.Run.TrainS
	if n > 0 {
		p, err := srv.ask(Command{Cmd: CmdPublishes, RunID: r.Run.ID})
		if err != nil {
			return nil, err
		}
		if err := cl.send(Expect{Published: *p.Published, TimeoutSeconds: 60}); err != nil {
			return nil, err
		}
		res.report = &ClientsReport{}
		if err := cl.recv(res.report); err != nil {
			return nil, err
		}
		st, err := cl.wait()
		if err != nil {
			return nil, err
		}
		res.clientsCPU, res.clientsSys = cpuSeconds(st), st.SystemTime().Seconds()
	}
	st, err := srv.wait()
	if err != nil {
		return nil, err
	}
	res.serverCPU, res.serverSys = cpuSeconds(st), st.SystemTime().Seconds()
	return res, nil
}

// loadAvg is the first three fields of /proc/loadavg, "" where there is
// none.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}

// peerMissing says why the FastAPI peer cannot run, or "".
func peerMissing(ctx context.Context, python, peer string) string {
	if peer == "" {
		return "no FastAPI peer given"
	}
	if _, err := os.Stat(peer); err != nil {
		return fmt.Sprintf("the FastAPI peer: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", "import fastapi, uvicorn").CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		why := err.Error()
		if msg != "" {
			why += ": " + msg
		}
		return fmt.Sprintf("%s cannot import fastapi and uvicorn (%s); make bench installs python3-fastapi and python3-uvicorn", python, why)
	}
	return ""
}

func cpuSeconds(st *os.ProcessState) float64 {
	return (st.UserTime() + st.SystemTime()).Seconds()
}

// proc is a server or clients process spoken to in JSON lines.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *json.Decoder
	stderr *tailWriter
	done   bool
}

func startProc(ctx context.Context, label, bin string, args ...string) (*proc, error) {
	p := &proc{name: label, stderr: &tailWriter{max: 4000}}
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.Stderr = p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.stdout = json.NewDecoder(out)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("hubload: starting %s: %w", p.name, err)
	}
	return p, nil
}

func (p *proc) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		return p.fail(err)
	}
	return nil
}

func (p *proc) recv(v any) error {
	if err := p.stdout.Decode(v); err != nil {
		return p.fail(err)
	}
	return nil
}

// ask sends a command to the server and returns its reply.
func (p *proc) ask(c Command) (*Reply, error) {
	if err := p.send(c); err != nil {
		return nil, err
	}
	var r Reply
	if err := p.recv(&r); err != nil {
		return nil, err
	}
	if r.Error != "" {
		return nil, fmt.Errorf("hubload: %s %s: %s\n%s", p.name, c.Cmd, r.Error, p.stderr)
	}
	return &r, nil
}

// wait closes stdin, which ends the process, and waits for it.
func (p *proc) wait() (*os.ProcessState, error) {
	p.stdin.Close()
	err := p.cmd.Wait()
	p.done = true
	if err != nil {
		return nil, p.fail(err)
	}
	return p.cmd.ProcessState, nil
}

// kill ends a process that wait has not; safe after wait.
func (p *proc) kill() {
	if p.done {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.stdin.Close()
	p.cmd.Wait()
	p.done = true
}

func (p *proc) fail(err error) error {
	return fmt.Errorf("hubload: %s: %w\n%s", p.name, err, strings.TrimSpace(p.stderr.String()))
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
}
