package hubload

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/agent"
	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
	"github.com/kairoscope/kairoscope/ws"
)

// logServer is the path through the log, as `kairoscope serve` builds it:
// an embedded JetStream server, ws.NewServer on the run log, and a local
// agent whose workers' messages go through the log to the hub. A message
// is published when the agent begins its append (agent.Metrics.Appended).
type logServer struct {
	emb  *runlog.Embedded
	nc   *nats.Conn
	l    *runlog.Log
	srv  *ws.Server
	pubs *publishLog
	h    http.Handler
	stop func() // stops the agent, then the server
	base string // http://addr
}

var _ hubServer = (*logServer)(nil)

func newLogServer(ctx context.Context, workerPath, reports, base string, log zerolog.Logger) (*logServer, error) {
	emb, err := runlog.StartEmbedded(filepath.Join(reports, "nats"), "")
	if err != nil {
		return nil, err
	}
	nc, err := emb.Connect("hubload")
	if err != nil {
		emb.Shutdown()
		return nil, err
	}
	l, err := runlog.Open(ctx, nc, runlog.Config{}, log)
	if err != nil {
		nc.Close()
		emb.Shutdown()
		return nil, err
	}
	s := &logServer{emb: emb, nc: nc, l: l, pubs: &publishLog{at: map[string][]int64{}}, base: base}
	runner := &worker.Runner{CPU: worker.Command{Device: worker.DeviceCPU, Path: workerPath, Args: []string{"worker"}}, Log: log}
	a := agent.New(agent.Config{Name: "hubload", Reports: reports}, l, runner, agent.Metrics{Appended: s.pubs.add}, log)
	s.srv = ws.NewServer(ws.Config{Version: "hubload", Device: schema.DeviceCPU}, l, log)
	s.h = s.srv.Handler()
	srvCtx, stopSrv := context.WithCancel(context.Background())
	agentCtx, stopAgent := context.WithCancel(ctx)
	stopped, agentDone := make(chan struct{}), make(chan struct{})
	go func() { s.srv.Run(srvCtx); close(stopped) }()
	go func() { a.Run(agentCtx); close(agentDone) }()
	<-a.Ready()
	s.stop = func() {
		stopAgent()
		<-agentDone
		stopSrv()
		<-stopped
	}
	return s, nil
}

func (s *logServer) handler() http.Handler { return s.h }

// clients asks the server's own GET / how many WebSocket clients it has,
// as any user would.
func (s *logServer) clients(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/", nil)
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

func (s *logServer) train(ctx context.Context, req schema.RunRequest) (RunInfo, error) {
	rec, err := s.srv.StartRun(ctx, req)
	if err != nil {
		return RunInfo{}, err
	}
	err = waitFor(ctx, "the run", func() (bool, error) {
		rec, _, err = s.l.Get(ctx, rec.ID)
		return runlog.Ended(rec.State), err
	})
	if err != nil {
		return RunInfo{ID: rec.ID}, err
	}
	info := RunInfo{ID: rec.ID}
	if rec.Started != nil && rec.Ended != nil {
		info.TrainS = rec.Ended.Sub(*rec.Started).Seconds()
	}
	if rec.State != runlog.StateCompleted {
		return info, fmt.Errorf("run %s %s: %s", rec.ID, rec.State, rec.Error)
	}
	return info, nil
}

// published waits until the agent has appended the run's every message,
// then reads their types back from the log.
func (s *logServer) published(ctx context.Context, id string) (Published, error) {
	rec, _, err := s.l.Get(ctx, id)
	if err != nil {
		return Published{}, err
	}
	var p Published
	err = waitFor(ctx, "the run's last message", func() (bool, error) {
		p.At = s.pubs.get(id)
		return uint64(len(p.At)) >= rec.Messages, nil
	})
	if err != nil {
		return p, err
	}
	evs, err := s.l.History(ctx, id)
	if err != nil {
		return p, err
	}
	p.Types = make([]string, len(p.At))
	for _, ev := range evs {
		var head struct {
			Type string `json:"type"`
		}
		if ev.Seq >= 1 && ev.Seq <= uint64(len(p.Types)) && json.Unmarshal(ev.Payload, &head) == nil {
			p.Types[ev.Seq-1] = head.Type
		}
	}
	return p, nil
}

func (s *logServer) close() {
	s.stop()
	s.nc.Close()
	s.emb.Shutdown()
}

// publishLog is the agent's Metrics.Appended record: per run, when the
// agent began appending each seq.
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
