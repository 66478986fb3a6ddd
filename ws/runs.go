package ws

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// Jobs runs one job to its end, passing each message (a JSON object) to
// emit. *worker.Runner is the real one; tests use fakes.
type Jobs interface {
	Run(ctx context.Context, spec worker.Spec, device string, emit func(msg []byte)) error
}

// Run states.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateCompleted = "completed"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// RunInfo is what GET /api/runs says of a run.
type RunInfo struct {
	ID          string            `json:"run_id"`
	State       string            `json:"state"`
	Request     schema.RunRequest `json:"request"`
	Created     time.Time         `json:"created"`
	Started     *time.Time        `json:"started,omitempty"`
	Ended       *time.Time        `json:"ended,omitempty"`
	Messages    uint64            `json:"messages"`
	Error       string            `json:"error,omitempty"`
	SummaryPath string            `json:"summary_path,omitempty"`
}

// ErrQueueFull is returned by Start when MaxQueuedRuns runs already wait.
var ErrQueueFull = errors.New("too many runs queued")

// ErrUnknownRun is returned for a run ID the server does not know.
var ErrUnknownRun = errors.New("unknown run")

// Runs owns the training runs: it queues them, runs at most
// MaxConcurrentRuns at once in workers, and publishes every message to the
// hub. A worker that dies becomes a training_error; the server goes on.
type Runs struct {
	jobs    Jobs
	hub     *Hub
	log     zerolog.Logger
	reports string
	device  string
	onOOM   string
	slots   chan struct{} // a token per running run
	maxWait int
	keep    int

	mu      sync.Mutex
	runs    map[string]*run
	ended   []string // IDs of ended runs whose history the hub keeps, oldest first
	waiting int
	wg      sync.WaitGroup
}

type run struct {
	info   RunInfo
	cancel context.CancelFunc
}

// RunsConfig sizes the registry.
type RunsConfig struct {
	Reports           string // each run writes under Reports/<run_id>
	Device            string // default device of a run: auto, cpu or gpu
	OnOOM             string // default for a run's on_oom: fail (or "") or halve
	MaxConcurrentRuns int    // runs training at once (default 1: a run uses the whole machine)
	MaxQueuedRuns     int    // runs waiting for a slot (default 8); more: ErrQueueFull (HTTP 429)
	// KeepFinished is how many ended runs keep their message history for
	// replay to new /ws clients (default 20); older ones keep only their
	// RunInfo.
	KeepFinished int
}

// NewRuns makes the registry.
func NewRuns(cfg RunsConfig, jobs Jobs, hub *Hub, log zerolog.Logger) *Runs {
	if cfg.MaxConcurrentRuns < 1 {
		cfg.MaxConcurrentRuns = 1
	}
	if cfg.MaxQueuedRuns < 1 {
		cfg.MaxQueuedRuns = 8
	}
	if cfg.Device == "" {
		cfg.Device = worker.DeviceAuto
	}
	if cfg.KeepFinished < 1 {
		cfg.KeepFinished = 20
	}
	return &Runs{keep: cfg.KeepFinished, jobs: jobs, hub: hub, log: log, reports: cfg.Reports, device: cfg.Device, onOOM: cfg.OnOOM,
		slots: make(chan struct{}, cfg.MaxConcurrentRuns), maxWait: cfg.MaxQueuedRuns, runs: map[string]*run{}}
}

func newID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "run_" + hex.EncodeToString(b)
}

// Start queues req and returns at once. The run's context is ctx's, so
// cancelling ctx (server shutdown) cancels every run.
func (rs *Runs) Start(ctx context.Context, req schema.RunRequest) (RunInfo, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.waiting >= rs.maxWait {
		return RunInfo{}, fmt.Errorf("%w: %d runs are waiting; try again later or cancel one", ErrQueueFull, rs.waiting)
	}
	rs.waiting++
	ctx, cancel := context.WithCancel(ctx)
	r := &run{info: RunInfo{ID: newID(), State: StateQueued, Request: req, Created: time.Now().UTC()}, cancel: cancel}
	rs.runs[r.info.ID] = r
	rs.wg.Add(1)
	go rs.execute(ctx, r)
	return r.info, nil
}

func (rs *Runs) execute(ctx context.Context, r *run) {
	defer rs.wg.Done()
	defer r.cancel()
	select {
	case rs.slots <- struct{}{}:
		defer func() { <-rs.slots }()
	case <-ctx.Done():
	}
	rs.mu.Lock()
	rs.waiting--
	if ctx.Err() != nil {
		rs.finishLocked(r, StateCancelled, "cancelled before it started")
		rs.mu.Unlock()
		rs.publish(r, &schema.TrainingError{Type: schema.TypeTrainingError, Error: "run cancelled before it started"})
		return
	}
	now := time.Now().UTC()
	r.info.State, r.info.Started = StateRunning, &now
	rs.mu.Unlock()

	req := r.info.Request
	req.OnOOM = cmp.Or(req.OnOOM, rs.onOOM)
	// A study sends no trial's epochs, hence no deltas.
	spec := worker.Spec{Run: &req, Reports: filepath.Join(rs.reports, r.info.ID), PredictionDeltas: req.Kind != schema.RunKindTune}
	device := req.Device
	if device == "" {
		device = rs.device
	}
	log := rs.log.With().Str("run_id", r.info.ID).Logger()
	log.Info().Str("kind", spec.Kind()).Str("dataset", req.Dataset).Str("device", device).Msg("run started")
	var terminal *terminalMsg
	notes := &milestones{}
	err := rs.jobs.Run(ctx, spec, device, func(msg []byte) {
		if t := parseTerminal(msg); t != nil {
			terminal = t
		}
		rs.publishRaw(r, msg)
		for _, n := range notes.observe(msg) {
			rs.publish(r, n)
		}
	})
	state, errText := StateCompleted, ""
	switch {
	case ctx.Err() != nil:
		state, errText = StateCancelled, "run cancelled"
	case terminal != nil && terminal.Type == schema.TypeTrainingError:
		state, errText = StateFailed, terminal.Error
	case err != nil:
		state, errText = StateFailed, err.Error()
	case terminal == nil:
		state, errText = StateFailed, "the worker ended without training_complete"
	}
	// Every run ends with training_complete or training_error on the hub;
	// a worker that died or was cancelled could not send it itself.
	if state != StateCompleted && (terminal == nil || terminal.Type != schema.TypeTrainingError) {
		rs.publish(r, &schema.TrainingError{Type: schema.TypeTrainingError, Error: errText})
	}
	rs.mu.Lock()
	rs.finishLocked(r, state, errText)
	if terminal != nil {
		r.info.SummaryPath = terminal.SummaryPath
	}
	rs.ended = append(rs.ended, r.info.ID)
	var forget []string
	if n := len(rs.ended) - rs.keep; n > 0 {
		forget, rs.ended = rs.ended[:n:n], rs.ended[n:]
	}
	rs.mu.Unlock()
	for _, id := range forget {
		rs.hub.Forget(id)
	}
	log.Info().Str("state", state).Str("error", errText).Msg("run ended")
}

func (rs *Runs) finishLocked(r *run, state, errText string) {
	now := time.Now().UTC()
	r.info.State, r.info.Ended, r.info.Error = state, &now, errText
}

func (rs *Runs) publish(r *run, msg any) {
	b, err := json.Marshal(msg)
	if err != nil {
		rs.log.Error().Err(err).Msg("encoding a message")
		return
	}
	rs.publishRaw(r, b)
}

func (rs *Runs) publishRaw(r *run, msg []byte) {
	rs.mu.Lock()
	r.info.Messages++
	rs.mu.Unlock()
	rs.hub.Publish(r.info.ID, msg)
}

// Cancel stops run id: a queued run never starts, a running one's worker is
// stopped.
func (rs *Runs) Cancel(id string) (RunInfo, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.runs[id]
	if !ok {
		return RunInfo{}, fmt.Errorf("%w %q", ErrUnknownRun, id)
	}
	r.cancel()
	return r.info, nil
}

// Get returns run id's state.
func (rs *Runs) Get(id string) (RunInfo, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.runs[id]
	if !ok {
		return RunInfo{}, fmt.Errorf("%w %q", ErrUnknownRun, id)
	}
	return r.info, nil
}

// List returns every run, oldest first.
func (rs *Runs) List() []RunInfo {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make([]RunInfo, 0, len(rs.runs))
	for _, r := range rs.runs {
		out = append(out, r.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// Active counts queued and running runs.
func (rs *Runs) Active() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	n := 0
	for _, r := range rs.runs {
		if r.info.State == StateQueued || r.info.State == StateRunning {
			n++
		}
	}
	return n
}

// Wait blocks until every run has ended (after their context is cancelled,
// at shutdown).
func (rs *Runs) Wait() { rs.wg.Wait() }

// terminalMsg is the part of a message that says a run ended.
type terminalMsg struct {
	Type        string `json:"type"`
	Error       string `json:"error"`
	SummaryPath string `json:"summary_path"`
}

func parseTerminal(msg []byte) *terminalMsg {
	var t terminalMsg
	if json.Unmarshal(msg, &t) != nil {
		return nil
	}
	if t.Type == schema.TypeTrainingComplete || t.Type == schema.TypeTrainingError {
		return &t
	}
	return nil
}
