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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kairoscope/kairoscope/datasets"
	"github.com/kairoscope/kairoscope/schema"
)

// Options says what Measure runs. Zero fields take their defaults.
type Options struct {
	Bin     string // the hubload binary (benchmarks/cmd/hubload); required
	Worker  string // the kairoscope binary whose worker command trains; required
	Dir     string // scratch folder for the runs' reports; required
	Clients int    // connections during a loaded run (default TargetClients)
	Runs    int    // runs without and with clients, each (default 3)
	// Request is the training run (default: the embedded bike dataset with
	// every engine default, on the CPU).
	Request schema.RunRequest
	// Timeout bounds one session, server start to exit (default 5 min), so
	// a stuck run fails instead of hanging.
	Timeout  time.Duration
	Progress io.Writer // a line per pair of runs; nil: none
	// Profile, when set, is a folder where the loaded runs' server and
	// clients processes write CPU profiles: server-N.pprof covers the
	// training run, clients-N.pprof the clients' reading (go tool pprof).
	Profile string
}

// Measure runs an untimed warm-up run, then Runs pairs of sessions, each
// with a fresh server process: the training run with no client, then the
// same run with Clients clients connected before it starts (alone, loaded,
// alone, loaded, ...). It fails when a run does not complete; lost messages
// are counted, not errors.
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
	if o.Request.Dataset == "" {
		o.Request.Dataset = datasets.Default
	}
	if o.Request.Device == "" {
		o.Request.Device = "cpu"
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	res := &Result{Clients: o.Clients, Runs: o.Runs, Request: o.Request,
		Method: "a fresh server process per run; one untimed warm-up run, then alone and loaded runs interleaved; " +
			"the clients connect before the run starts and read every frame in a separate process; " +
			"latency = client receive time − hub Publish time, wall-clock UnixNano on one machine"}
	if _, err := session(ctx, o, 0, 0); err != nil {
		return nil, fmt.Errorf("hubload: warm-up run: %w", err)
	}
	var all []float64
	byType := map[string][]float64{}
	var typeOrder []string
	var typeMsgs, typeBytes map[string]int
	var serverAlone, serverLoaded, clientsCPU, serverAloneSys, serverLoadedSys, clientsSys, conn, connRSS, dial []float64
	for i := range o.Runs {
		alone, err := session(ctx, o, 0, i+1)
		if err != nil {
			return nil, err
		}
		loaded, err := session(ctx, o, o.Clients, i+1)
		if err != nil {
			return nil, err
		}
		res.AloneRuns = append(res.AloneRuns, alone.trainS)
		res.LoadedRuns = append(res.LoadedRuns, loaded.trainS)
		serverAlone = append(serverAlone, alone.serverCPU)
		serverLoaded = append(serverLoaded, loaded.serverCPU)
		clientsCPU = append(clientsCPU, loaded.clientsCPU)
		serverAloneSys = append(serverAloneSys, alone.serverSys)
		serverLoadedSys = append(serverLoadedSys, loaded.serverSys)
		clientsSys = append(clientsSys, loaded.clientsSys)
		conn = append(conn, loaded.connBytes)
		connRSS = append(connRSS, loaded.connRSS)
		dial = append(dial, loaded.dialS)

		r := loaded.report
		if i == 0 {
			res.Messages = r.Messages
			typeMsgs, typeBytes = map[string]int{}, map[string]int{}
			for k, t := range r.Types {
				res.BytesPerClient += int64(r.Bytes[k])
				if typeMsgs[t] == 0 {
					typeOrder = append(typeOrder, t)
				}
				typeMsgs[t]++
				typeBytes[t] += r.Bytes[k]
			}
		}
		res.Deliveries += int64(r.Clients) * int64(r.Messages)
		res.Lost += r.Lost
		res.OutOfOrder += r.OutOfOrder
		for k, lat := range r.LatencyUS {
			for _, us := range lat {
				if us >= 0 {
					ms := float64(us) / 1e3
					all = append(all, ms)
					byType[r.Types[k]] = append(byType[r.Types[k]], ms)
				}
			}
		}
		l := latencyOf(flatMS(r))
		res.RunsP99 = append(res.RunsP99, l.P99)
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "hub     run %d/%d  alone %.2f s  %d clients %.2f s  p50 %.1f ms  p99 %.1f ms  max %.1f ms  lost %d\n",
				i+1, o.Runs, alone.trainS, o.Clients, loaded.trainS, l.P50, l.P99, l.Max, r.Lost)
		}
	}
	res.Latency = latencyOf(all)
	for _, t := range typeOrder {
		res.ByType = append(res.ByType, TypeLatency{Type: t, Messages: typeMsgs[t], Bytes: typeBytes[t] / typeMsgs[t], Latency: latencyOf(byType[t])})
	}
	res.AloneS, res.LoadedS = Median(res.AloneRuns), Median(res.LoadedRuns)
	if res.AloneS > 0 {
		res.Slowdown = res.LoadedS / res.AloneS
	}
	res.ServerCPUAloneS, res.ServerCPULoadedS, res.ClientsCPUS = Median(serverAlone), Median(serverLoaded), Median(clientsCPU)
	res.ServerSysAloneS, res.ServerSysLoadedS, res.ClientsSysS = Median(serverAloneSys), Median(serverLoadedSys), Median(clientsSys)
	res.ConnBytes, res.ConnRSSBytes, res.DialS = int64(Median(conn)), int64(Median(connRSS)), Median(dial)
	return res, nil
}

func flatMS(r *ClientsReport) []float64 {
	var out []float64
	for _, lat := range r.LatencyUS {
		for _, us := range lat {
			if us >= 0 {
				out = append(out, float64(us)/1e3)
			}
		}
	}
	return out
}

// sessionResult is one server process's run.
type sessionResult struct {
	trainS                 float64 // the run's wall time
	serverCPU, serverSys   float64 // the server's and its worker's CPU seconds, and the kernel's share
	clientsCPU, clientsSys float64
	connBytes, connRSS     float64 // per connection, idle
	dialS                  float64
	report                 *ClientsReport // nil without clients
}

// session starts a server, connects n clients (none when n is 0), runs
// o.Request to its end and collects what the clients received. i numbers
// the profiles of a loaded session.
func session(ctx context.Context, o Options, n, i int) (*sessionResult, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	srvArgs, clArgs := []string{"server", "-worker", o.Worker, "-reports", o.Dir}, []string{"clients"}
	if o.Profile != "" && n > 0 {
		srvArgs = append(srvArgs, "-cpuprofile", filepath.Join(o.Profile, fmt.Sprintf("server-%d.pprof", i)))
		clArgs = append(clArgs, "-cpuprofile", filepath.Join(o.Profile, fmt.Sprintf("clients-%d.pprof", i)))
	}
	srv, err := startProc(ctx, o.Bin, srvArgs...)
	if err != nil {
		return nil, err
	}
	defer srv.kill()
	var ready Ready
	if err := srv.recv(&ready); err != nil {
		return nil, err
	}
	res := &sessionResult{}
	var cl *proc
	if n > 0 {
		before, err := srv.ask(Command{Cmd: CmdMem})
		if err != nil {
			return nil, err
		}
		if cl, err = startProc(ctx, o.Bin, append(clArgs, "-addr", ready.Addr, "-n", strconv.Itoa(n))...); err != nil {
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
		res.connBytes = float64(a.HeapBytes+a.StackBytes-b.HeapBytes-b.StackBytes) / float64(n)
		res.connRSS = float64(a.RSSBytes-b.RSSBytes) / float64(n)
	}
	r, err := srv.ask(Command{Cmd: CmdTrain, Request: o.Request})
	if err != nil {
		return nil, err
	}
	res.trainS = r.Run.Ended.Sub(*r.Run.Started).Seconds()
	if n > 0 {
		p, err := srv.ask(Command{Cmd: CmdPublishes, RunID: r.Run.ID})
		if err != nil {
			return nil, err
		}
		if err := cl.send(Expect{PublishedAt: p.PublishedAt, TimeoutSeconds: 60}); err != nil {
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

func startProc(ctx context.Context, bin string, args ...string) (*proc, error) {
	p := &proc{name: "hubload " + args[0], stderr: &tailWriter{max: 4000}}
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
