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
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/schema"
)

// serverWait bounds the server's own waits: for clients to register, for a
// run to end, for the hub to deliver a run's last message.
const serverWait = 5 * time.Minute

// hubServer is one path's server: what it serves on /ws, how it runs a
// training request and what it published of it. server_log.go is the
// path through the run log, server_memory.go the hub fed directly.
type hubServer interface {
	// handler serves /ws (and whatever else the path serves).
	handler() http.Handler
	// clients is the number of WebSocket clients the server has.
	clients(ctx context.Context) (int, error)
	// train runs req to its end.
	train(ctx context.Context, req schema.RunRequest) (RunInfo, error)
	// published waits until every message of run id is published and
	// says when each was.
	published(ctx context.Context, id string) (Published, error)
	// close stops the path: its hub closes its clients. The HTTP server
	// is closed after it.
	close()
}

// Serve is the server process: `hubload server -path log|memory -worker
// PATH -reports DIR`. It serves one hub path on a loopback port, its
// training jobs running in `PATH worker`, prints Ready, then answers
// Commands read from stdin until EOF, when it shuts down.
func Serve(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hubload server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("path", PathLog, "the hub path: log (ws.NewServer on embedded JetStream with a local agent, as kairoscope serve) or memory (ws/hub fed by the worker directly)")
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("hubload server: %w", err)
	}
	defer ln.Close()
	var hs hubServer
	switch *path {
	case PathLog:
		hs, err = newLogServer(ctx, *workerPath, *reports, "http://"+ln.Addr().String(), log)
	case PathMemory:
		hs, err = newMemoryServer(*workerPath, *reports, log)
	default:
		err = fmt.Errorf("hubload server: -path %q: want %s or %s", *path, PathLog, PathMemory)
	}
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: hs.handler(), ReadHeaderTimeout: 10 * time.Second}
	go httpSrv.Serve(ln)
	defer func() {
		cancel()
		hs.close()
		httpSrv.Close()
	}()

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
		} else if err := do(ctx, hs, *profile, c, &r); err != nil {
			r.Error = err.Error()
		}
		if err := out.Encode(r); err != nil {
			return err
		}
	}
	return in.Err()
}

// do answers one of the driver's commands.
func do(ctx context.Context, hs hubServer, profile string, c Command, r *Reply) error {
	switch c.Cmd {
	case CmdMem:
		r.Mem = memNow()
		return nil
	case CmdWaitClients:
		return waitFor(ctx, fmt.Sprintf("%d clients", c.Clients), func() (bool, error) {
			n, err := hs.clients(ctx)
			r.Clients = n
			return n == c.Clients, err
		})
	case CmdTrain:
		stop, err := startProfile(profile)
		if err != nil {
			return err
		}
		defer stop()
		info, err := hs.train(ctx, c.Request)
		r.Run = &info
		return err
	case CmdPublishes:
		p, err := hs.published(ctx, c.RunID)
		r.Published = &p
		return err
	}
	return fmt.Errorf("unknown command %q", c.Cmd)
}

// waitFor polls done every few milliseconds, up to serverWait.
func waitFor(ctx context.Context, what string, done func() (bool, error)) error {
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
