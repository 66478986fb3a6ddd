package hubload

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/agent"
	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
	"github.com/kairoscope/kairoscope/ws"
)

// serverWait bounds the server's own waits: for clients to register, for a
// run to end, for the hub to deliver a run's last message.
const serverWait = 5 * time.Minute

// Serve is the server process: `hubload server -worker PATH -reports DIR`.
// It serves ws.NewServer with the real worker runner (CPU jobs run in
// `PATH worker`) on a loopback port, prints Ready, then answers Commands
// read from stdin until EOF, when it shuts down as `kairoscope serve` does.
func Serve(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hubload server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	workerPath := fs.String("worker", "", "the kairoscope binary whose worker command trains (required)")
	reports := fs.String("reports", "", "folder for the runs' reports and the embedded NATS store (required)")
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the training runs (train commands) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *workerPath == "" || *reports == "" {
		return errors.New("hubload server: -worker and -reports are required")
	}
	log := zerolog.New(stderr).With().Timestamp().Logger().Level(zerolog.InfoLevel)

	// As `kairoscope serve` builds it: an embedded JetStream server, the
	// replica, and a local agent whose appends are the publish times.
	emb, err := runlog.StartEmbedded(filepath.Join(*reports, "nats"), "")
	if err != nil {
		return err
	}
	defer emb.Shutdown()
	nc, err := emb.Connect("hubload")
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l, err := runlog.Open(ctx, nc, runlog.Config{}, log)
	if err != nil {
		return err
	}
	pubs := &publishLog{at: map[string][]int64{}}
	cfg := ws.Config{Version: "hubload", Device: schema.DeviceCPU}
	runner := &worker.Runner{CPU: worker.Command{Device: worker.DeviceCPU, Path: *workerPath, Args: []string{"worker"}}, Log: log}
	a := agent.New(agent.Config{Name: "hubload", Reports: *reports}, l, runner, agent.Metrics{Appended: pubs.add}, log)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("hubload server: %w", err)
	}
	srv := ws.NewServer(cfg, l, log)
	httpSrv := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go httpSrv.Serve(ln)
	stopped := make(chan struct{})
	srvCtx, stopSrv := context.WithCancel(context.Background())
	go func() { srv.Run(srvCtx); close(stopped) }()
	agentDone := make(chan struct{})
	go func() { a.Run(ctx); close(agentDone) }()
	<-a.Ready()
	defer func() {
		cancel()
		<-agentDone
		stopSrv()
		<-stopped
		httpSrv.Close()
	}()

	s := &server{srv: srv, l: l, pubs: pubs, base: "http://" + ln.Addr().String(), profile: *profile}
	out := json.NewEncoder(stdout)
	if err := out.Encode(Ready{Addr: ln.Addr().String()}); err != nil {
		return err
	}
	in := bufio.NewScanner(stdin)
	for in.Scan() {
		var c Command
		var r Reply
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			r.Error = fmt.Sprintf("bad command %q: %v", in.Text(), err)
		} else if err := s.do(ctx, c, &r); err != nil {
			r.Error = err.Error()
		}
		if err := out.Encode(r); err != nil {
			return err
		}
	}
	return in.Err()
}

// server answers the driver's commands.
type server struct {
	srv     *ws.Server
	l       *runlog.Log
	pubs    *publishLog
	base    string // http://addr
	profile string // -cpuprofile
}

func (s *server) do(ctx context.Context, c Command, r *Reply) error {
	switch c.Cmd {
	case CmdMem:
		r.Mem = memNow()
		return nil
	case CmdWaitClients:
		return s.waitFor(ctx, fmt.Sprintf("%d clients", c.Clients), func() (bool, error) {
			n, err := s.clients()
			r.Clients = n
			return n == c.Clients, err
		})
	case CmdTrain:
		stop, err := startProfile(s.profile)
		if err != nil {
			return err
		}
		defer stop()
		rec, err := s.srv.StartRun(ctx, c.Request)
		if err != nil {
			return err
		}
		err = s.waitFor(ctx, "the run", func() (bool, error) {
			rec, _, err = s.l.Get(ctx, rec.ID)
			return runlog.Ended(rec.State), err
		})
		r.Run = &rec
		if err == nil && rec.State != runlog.StateCompleted {
			err = fmt.Errorf("run %s %s: %s", rec.ID, rec.State, rec.Error)
		}
		return err
	case CmdPublishes:
		rec, _, err := s.l.Get(ctx, c.RunID)
		if err != nil {
			return err
		}
		return s.waitFor(ctx, "the run's last message", func() (bool, error) {
			r.PublishedAt = s.pubs.get(c.RunID)
			return uint64(len(r.PublishedAt)) >= rec.Messages, nil
		})
	}
	return fmt.Errorf("unknown command %q", c.Cmd)
}

// waitFor polls done every few milliseconds, up to serverWait.
func (s *server) waitFor(ctx context.Context, what string, done func() (bool, error)) error {
	deadline := time.Now().Add(serverWait)
	for {
		ok, err := done()
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %v for %s", serverWait, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// clients asks the server's own GET / how many WebSocket clients it has,
// as any user would.
func (s *server) clients() (int, error) {
	req, err := http.NewRequest(http.MethodGet, s.base+"/", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var h ws.Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return 0, fmt.Errorf("GET /: %w", err)
	}
	return h.Clients, nil
}

// startProfile starts a CPU profile into path, when it is not "", and
// returns what stops it.
func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// publishLog is the agent's Metrics.Appended record: per run, when the log
// acknowledged each seq.
type publishLog struct {
	mu sync.Mutex
	at map[string][]int64 // UnixNano by run, index seq-1
}

func (p *publishLog) add(runID string, seq uint64, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.at[runID]
	for uint64(len(a)) < seq { // seq is always len+1; a gap stays 0
		a = append(a, 0)
	}
	a[seq-1] = at.UnixNano()
	p.at[runID] = a
}

func (p *publishLog) get(runID string) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int64(nil), p.at[runID]...)
}

// memNow collects garbage (runtime.GC, then debug.FreeOSMemory, which
// collects again and returns the freed pages to the OS) and reads the
// process's memory.
func memNow() *Mem {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &Mem{HeapBytes: int64(ms.HeapInuse), StackBytes: int64(ms.StackInuse), RSSBytes: rss(), Goroutines: runtime.NumGoroutine()}
}

// rss is VmRSS from /proc/self/status in bytes; 0 where there is none.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
