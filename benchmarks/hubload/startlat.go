package hubload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strconv"
	"time"

	"github.com/kairoscope/kairoscope/schema"
)

// StartOptions says what StartLatency runs. Zero fields take their
// defaults.
type StartOptions struct {
	Kairoscope string // the kairoscope binary; required
	Dir        string // scratch folder for the servers' data; required
	Runs       int    // runs per mode (default 3)
	// Request is the run started (default DefaultRequest).
	Request schema.RunRequest
	// Pinning's Server CPUs run serve and the agent (default
	// DetectPinning()); the one client runs in this process.
	Pinning *Pinning
	// Timeout bounds each run, POST to its last message (default 2 min).
	Timeout  time.Duration
	Progress io.Writer // a line per pair of runs; nil: none
}

// StartResult is the latency from POST /api/runs to the first
// epoch_metrics a plain /ws client receives, in seconds: through serve's
// own local agent, and through a `kairoscope agent` process connected to
// serve's embedded NATS. Medians, and every run in order.
type StartResult struct {
	Runs      int       `json:"runs"`
	Method    string    `json:"method"`
	LocalS    float64   `json:"local_s"`
	AgentS    float64   `json:"agent_s"`
	LocalRuns []float64 `json:"runs_local_s"`
	AgentRuns []float64 `json:"runs_agent_s"`
}

// StartLatency starts two set-ups side by side, each on a fresh data
// folder: `kairoscope serve` with its embedded agent (local), and `serve
// --nats-listen --local-agent=false` with a `kairoscope agent --nats`
// process (agent). Once each answers /healthz (and, through an agent, lists
// the agent), a /ws client connects to each, and the runs alternate, local
// then agent: POST /api/runs, wait for the run's first epoch_metrics (the
// measure) and then for its end.
func StartLatency(ctx context.Context, o StartOptions) (*StartResult, error) {
	if o.Kairoscope == "" || o.Dir == "" {
		return nil, errors.New("hubload: StartOptions.Kairoscope and Dir are required")
	}
	if o.Runs <= 0 {
		o.Runs = 3
	}
	if reflect.ValueOf(o.Request).IsZero() {
		o.Request = DefaultRequest
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	pin := DetectPinning()
	if o.Pinning != nil {
		pin = *o.Pinning
	}
	res := &StartResult{Runs: o.Runs, Method: "POST /api/runs sent → the run's first epoch_metrics read whole by a plain /ws client connected before; " +
		"local: kairoscope serve with its embedded agent; agent: serve --nats-listen --local-agent=false and a kairoscope agent --nats process; " +
		"one fresh data folder per set-up, runs alternating local, agent, each waiting for the previous run's end"}
	local, err := startSetup(ctx, o, pin, false)
	if err != nil {
		return nil, err
	}
	defer local.stop()
	remote, err := startSetup(ctx, o, pin, true)
	if err != nil {
		return nil, err
	}
	defer remote.stop()
	for i := range o.Runs {
		l, err := local.start(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("hubload: start latency, local: %w", err)
		}
		a, err := remote.start(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("hubload: start latency, through an agent: %w", err)
		}
		res.LocalRuns, res.AgentRuns = append(res.LocalRuns, l), append(res.AgentRuns, a)
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "start   run %d/%d  POST → first epoch_metrics: local %.3f s, through an agent %.3f s\n", i+1, o.Runs, l, a)
		}
	}
	res.LocalS, res.AgentS = Median(res.LocalRuns), Median(res.AgentRuns)
	return res, nil
}

// setup is one serve (and maybe agent) with a /ws client on it.
type setup struct {
	base   string // http://addr
	procs  []*proc
	client *client
	events chan event
	done   chan struct{} // closed when the client's reader ends
}

// event is a message the client read: its type and run, and when.
type event struct {
	typ, run string
	at       time.Time
}

func startSetup(ctx context.Context, o StartOptions, pin Pinning, agent bool) (*setup, error) {
	mode := "local"
	if agent {
		mode = "agent"
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(o.Dir, "start-"+mode)
	args := []string{"serve", "--addr", addr, "--data-dir", filepath.Join(dir, "serve"), "--device", "cpu"}
	natsAddr := ""
	if agent {
		if natsAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		args = append(args, "--nats-listen", natsAddr, "--local-agent=false")
	}
	s := &setup{base: "http://" + addr, events: make(chan event, 4096), done: make(chan struct{})}
	run := func(label string, args ...string) error {
		name, args := pin.command(pin.Server, o.Kairoscope, args...)
		p, err := startProc(ctx, label, name, args...)
		if err == nil {
			s.procs = append(s.procs, p)
		}
		return err
	}
	if err := run("kairoscope serve ("+mode+")", args...); err != nil {
		return nil, err
	}
	wait := func(what string, ok func() bool) error {
		deadline := time.Now().Add(time.Minute)
		for !ok() {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("hubload: waited a minute for %s\n%s", what, s.procs[len(s.procs)-1].stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return nil
	}
	if err := wait("kairoscope serve to answer /healthz", func() bool { return s.healthy(ctx) }); err != nil {
		s.stop()
		return nil, err
	}
	if agent {
		if err := run("kairoscope agent", "agent", "--nats", "nats://"+natsAddr, "--data-dir", filepath.Join(dir, "agent")); err != nil {
			s.stop()
			return nil, err
		}
		if err := wait("the agent to join", func() bool { return s.agents(ctx) > 0 }); err != nil {
			s.stop()
			return nil, err
		}
	}
	if s.client, err = dial(ctx, addr); err != nil {
		s.stop()
		return nil, err
	}
	go s.read()
	return s, nil
}

// read passes on every message the client receives, parsed whole.
func (s *setup) read() {
	defer close(s.done)
	for {
		msg, at, err := s.client.next()
		if err != nil {
			return
		}
		m, err := parse(msg)
		if err != nil {
			continue
		}
		select {
		case s.events <- event{typ: m.Type, run: m.RunID, at: time.Unix(0, at)}:
		default: // nobody waits for so many
		}
	}
}

// start runs o.Request and returns the seconds from its POST to its first
// epoch_metrics, once the run has ended.
func (s *setup) start(ctx context.Context, o StartOptions) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	body, err := json.Marshal(o.Request)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/api/runs", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	sent := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rec struct {
		ID string `json:"run_id"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &rec) != nil || rec.ID == "" {
		return 0, fmt.Errorf("POST /api/runs: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	var first time.Time
	for {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("run %s: no end after %v (first epoch_metrics: %v)", rec.ID, o.Timeout, !first.IsZero())
		case <-s.done:
			return 0, fmt.Errorf("run %s: the /ws client's connection ended: %v", rec.ID, s.client.err)
		case ev := <-s.events:
			if ev.run != rec.ID {
				continue
			}
			if ev.typ == schema.TypeEpochMetrics && first.IsZero() {
				first = ev.at
			}
			switch ev.typ {
			case schema.TypeTrainingError:
				return 0, fmt.Errorf("run %s ended in %s", rec.ID, ev.typ)
			case schema.TypeTrainingComplete:
				if first.IsZero() {
					return 0, fmt.Errorf("run %s completed without epoch_metrics", rec.ID)
				}
				return first.Sub(sent).Seconds(), nil
			}
		}
	}
}

func (s *setup) healthy(ctx context.Context) bool {
	b, status := s.get(ctx, "/healthz")
	return status == http.StatusOK && bytes.HasPrefix(b, []byte("ok"))
}

// agents is the number of agents GET / counts.
func (s *setup) agents(ctx context.Context) int {
	b, status := s.get(ctx, "/")
	var h struct {
		Agents int `json:"agents"`
	}
	if status != http.StatusOK || json.Unmarshal(b, &h) != nil {
		return 0
	}
	return h.Agents
}

func (s *setup) get(ctx context.Context, path string) ([]byte, int) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return nil, 0
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b, resp.StatusCode
}

// stop closes the client and ends the processes, the agent first.
func (s *setup) stop() {
	if s.client != nil {
		s.client.conn.Close()
		<-s.done
	}
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].kill()
	}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}
