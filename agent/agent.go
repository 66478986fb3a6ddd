package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// Jobs runs one job to its end in a worker, passing each message (a JSON
// object) to emit in order. *worker.Runner is the real one; tests use fakes.
// Cancelling ctx stops the worker (and its whole process group) and Run
// returns once it has exited.
type Jobs interface {
	Run(ctx context.Context, spec worker.Spec, device string, emit func(msg []byte)) error
}

// Config says what an agent takes and where it writes.
type Config struct {
	// Name is the agent's stable name (default: the host name): records
	// say which agent holds a run, and a restarted agent of the same name
	// takes back its runs at once.
	Name    string
	Version string
	// Classes are the device classes taken, in order of preference: a GPU
	// agent takes gpu, any, cpu; a CPU agent any, cpu.
	Classes []string
	// TrainSlots and ForecastSlots are how many jobs of each lane run at
	// once (default 1 each; 0 turns a lane off with -1).
	TrainSlots, ForecastSlots int
	// Reports is the folder runs write their reports under (Reports/<run_id>).
	Reports string
	// Cache is where dataset versions fetched from the log's object store
	// are kept, by hash (default Reports/../cache).
	Cache string

	// MaxRunTime is the wall-clock limit of one attempt of a training run
	// (default DefaultMaxRunTime), MaxForecastTime that of a forecast
	// (DefaultMaxForecastTime). Past it the agent stops the worker and ends
	// the job failed, with a training_error (or error) naming the limit.
	// Negative: no limit.
	MaxRunTime, MaxForecastTime time.Duration
	// MaxJobBytes bounds the bytes of messages one attempt of a job may
	// append to its log (default DefaultMaxJobBytes, a quarter of the log's
	// default size): a worker flooding its stdout is stopped there and the
	// job fails, instead of pushing other runs' history out of the log.
	// Negative: no limit.
	MaxJobBytes int64
}

// Metrics is what the agent counts; nil fields are not counted.
type Metrics struct {
	WorkerExits func(cause string) // once per job: completed, failed, cancelled, fenced, released, lost_lease, limit
	Busy        func(lane string, delta int)
	// Appended is told of every message the agent has appended to a run's
	// log, once the log acknowledged it, with when the append began (a
	// replica may deliver the message before the acknowledgement is back).
	Appended func(runID string, seq uint64, began time.Time)
}

// Agent takes jobs from the run log and runs them in worker processes,
// holding each with a lease it renews, and appends their messages to the
// run's log. It stops a worker whose run is cancelled, or whose run it no
// longer holds (fenced), and never writes for a run it does not hold.
type Agent struct {
	cfg     Config
	l       *runlog.Log
	jobs    Jobs
	log     zerolog.Logger
	metrics Metrics
	inc     string
	busy    sync.Map      // lane → *atomic.Int64
	ready   chan struct{} // closed once the agent has said it is alive
}

// New returns an agent; Run starts it.
func New(cfg Config, l *runlog.Log, jobs Jobs, m Metrics, log zerolog.Logger) *Agent {
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	if len(cfg.Classes) == 0 {
		cfg.Classes = []string{runlog.ClassAny, runlog.ClassCPU}
	}
	if cfg.TrainSlots == 0 {
		cfg.TrainSlots = 1
	}
	if cfg.ForecastSlots == 0 {
		cfg.ForecastSlots = 1
	}
	b := make([]byte, 4)
	rand.Read(b)
	a := &Agent{cfg: cfg, l: l, jobs: jobs, metrics: m, inc: hex.EncodeToString(b), ready: make(chan struct{})}
	a.log = log.With().Str("agent", cfg.Name).Logger()
	return a
}

// Ready is closed once the agent has announced itself (its first
// heartbeat), so a replica counts it among the agents serving its classes.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Name is the agent's name.
func (a *Agent) Name() string { return a.cfg.Name }

// Run takes and runs jobs until ctx is done. Then it stops its workers,
// hands their runs back to the queue for another attempt (a forecast fails
// instead: its client waits on this server), and returns.
func (a *Agent) Run(ctx context.Context) error {
	taker, err := a.l.Taker(ctx, a.cfg.Name, a.inc, a.cfg.Classes)
	if err != nil {
		return err
	}
	defer taker.Close()
	if recs, err := a.l.Records(ctx); err == nil {
		taker.Reclaim(ctx, recs)
	} else {
		a.log.Warn().Err(err).Msg("agent: listing runs to take back those of an earlier process")
	}
	var wg sync.WaitGroup
	a.beat(ctx)
	close(a.ready)
	wg.Go(func() { a.heartbeat(ctx) })
	slots := map[string]int{runlog.LaneTrain: a.cfg.TrainSlots, runlog.LaneForecast: a.cfg.ForecastSlots}
	for lane, n := range slots {
		for range max(n, 0) {
			wg.Go(func() {
				for {
					job, err := taker.Take(ctx, lane)
					if err != nil {
						return // ctx is done
					}
					a.execute(ctx, job)
				}
			})
		}
	}
	a.log.Info().Strs("classes", a.cfg.Classes).Int("train_slots", a.cfg.TrainSlots).Int("forecast_slots", a.cfg.ForecastSlots).
		Str("incarnation", a.inc).Msg("agent: taking jobs")
	wg.Wait()
	a.l.Leave(context.Background(), a.cfg.Name)
	a.log.Info().Msg("agent: stopped")
	return nil
}

// heartbeat says every few seconds that the agent is alive and how busy.
func (a *Agent) heartbeat(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.beat(ctx)
	}
}

func (a *Agent) beat(ctx context.Context) {
	host, _ := os.Hostname()
	info := runlog.AgentInfo{Name: a.cfg.Name, Incarnation: a.inc, Host: host, Version: a.cfg.Version, Classes: a.cfg.Classes,
		Lanes: []runlog.Slots{{Lane: runlog.LaneTrain, Slots: max(a.cfg.TrainSlots, 0), Busy: a.busyIn(runlog.LaneTrain)},
			{Lane: runlog.LaneForecast, Slots: max(a.cfg.ForecastSlots, 0), Busy: a.busyIn(runlog.LaneForecast)}}}
	if err := a.l.Beat(ctx, info); err != nil && ctx.Err() == nil {
		a.log.Warn().Err(err).Msg("agent: heartbeat")
	}
}

func (a *Agent) busyCounter(lane string) *atomic.Int64 {
	v, _ := a.busy.LoadOrStore(lane, new(atomic.Int64))
	return v.(*atomic.Int64)
}

func (a *Agent) busyIn(lane string) int { return int(a.busyCounter(lane).Load()) }

// Why a worker is stopped before it ends on its own.
var (
	errShutdown  = errors.New("the agent is stopping")
	errCancelled = errors.New("run cancelled")
	errFenced    = errors.New("another attempt holds the run")
	errLostLease = errors.New("could not renew the lease in time")
)

// lostHold reports whether the agent no longer holds its run (fenced) or
// may not (its lease ran out unrenewed, so another agent may take it): it
// must then write nothing more, not even what its worker still says while
// it stops, such as a training_error for the SIGTERM.
func lostHold(cause error) bool {
	return errors.Is(cause, errFenced) || errors.Is(cause, errLostLease)
}

// stopping reports whether the agent is stopping the worker of a run it
// still holds: the run is cancelled, or the agent shuts down.
func stopping(cause error) bool {
	return errors.Is(cause, errCancelled) || errors.Is(cause, errShutdown)
}

// execute runs one held job to its end.
func (a *Agent) execute(agentCtx context.Context, job *runlog.Job) {
	rec := job.Rec
	log := a.log.With().Str("run_id", rec.ID).Int("attempt", rec.Attempt).Logger()
	a.busyCounter(rec.Lane).Add(1)
	defer a.busyCounter(rec.Lane).Add(-1)
	if a.metrics.Busy != nil {
		a.metrics.Busy(rec.Lane, 1)
		defer a.metrics.Busy(rec.Lane, -1)
	}
	// The log is written with a context of its own: at shutdown the
	// agent still writes how its runs were handed back.
	ctx := context.WithoutCancel(agentCtx)
	workCtx, stopWork := context.WithCancelCause(ctx)
	// The worker's messages are written with writeCtx, dropped the moment
	// the agent loses its hold on the run: an append waiting on an
	// unreachable server then gives up, so the worker's output is read
	// (and discarded) again and the worker can stop.
	writeCtx, dropWrites := context.WithCancel(ctx)
	defer dropWrites()
	var lost atomic.Pointer[error] // how the agent lost its hold, if it did
	stop := func(cause error) {
		if lostHold(cause) {
			lost.CompareAndSwap(nil, &cause)
			dropWrites()
		}
		stopWork(cause)
	}
	defer stop(nil)
	go func() {
		select {
		case <-agentCtx.Done():
			stop(errShutdown)
		case <-workCtx.Done():
		}
	}()

	spec := rec.Spec
	if rec.Lane == runlog.LaneTrain && a.cfg.Reports != "" {
		spec.Reports = filepath.Join(a.cfg.Reports, rec.ID)
		if rec.Attempt > 1 {
			// A new attempt starts from scratch: an earlier one's reports,
			// here or in the object store, would mix with its own.
			os.RemoveAll(spec.Reports)
			a.l.DeleteBlobs(ctx, runlog.ReportBlob(rec.ID, ""))
		}
	}
	if err := a.resolveData(ctx, &spec); err != nil {
		log.Error().Err(err).Msg("agent: the job's dataset version")
		if job.Append(ctx, runlog.EndingMessage(rec.Lane, err.Error()), true) == nil {
			job.Finish(ctx, runlog.StateFailed, err.Error(), "")
		}
		return
	}
	if n := len(rec.Notes); n > 0 && rec.Attempt > 1 {
		// The restart marker: no client mistakes two attempts for one.
		a.appendJSON(ctx, job, &schema.Notification{Type: schema.TypeNotification, Level: schema.LevelWarning, Kind: schema.KindRetry,
			Message: fmt.Sprintf("attempt %d starts on agent %s: %s", rec.Attempt, a.cfg.Name, rec.Notes[n-1])}, stop)
	}
	log.Info().Str("lane", rec.Lane).Str("kind", spec.Kind()).Str("dataset", spec.Dataset()).Str("device", rec.Device).Msg("agent: job started")

	// The lease is held until the worker has exited, however long it
	// takes to stop: until then the run is this agent's.
	exited, renewed := make(chan struct{}), make(chan struct{})
	go func() { a.holdLease(ctx, exited, job, stop, log); close(renewed) }()
	if d, over := a.timeLimit(rec.Lane); d > 0 {
		t := time.AfterFunc(d, func() { stop(over) })
		defer t.Stop()
	}
	maxBytes, overBytes := a.byteLimit()
	var wrote int64

	var terminal *terminalMsg
	notes := &milestones{}
	err := a.jobs.Run(workCtx, spec, rec.Device, func(msg []byte) {
		if lost.Load() != nil {
			return // write nothing more: the worker's last words would be another attempt's
		}
		if _, over := asLimit(context.Cause(workCtx)); over {
			return // past a limit: its ending is the last message
		}
		if wrote += int64(len(msg)); maxBytes > 0 && wrote > maxBytes {
			stop(overBytes)
			return
		}
		t := parseTerminal(msg)
		if t != nil && t.failed() && stopping(context.Cause(workCtx)) {
			// The worker's error for the SIGTERM the agent sent it: the
			// agent writes how the run ended (cancelled, or handed back).
			return
		}
		began := time.Now()
		if err := job.Append(writeCtx, msg, t != nil); err != nil {
			if lost.Load() == nil {
				log.Error().Err(err).Msg("agent: appending to the run's log")
			}
			stop(errFenced)
			return
		}
		a.appended(job, began)
		if t != nil {
			terminal = t
			return
		}
		for _, n := range notes.observe(msg) {
			a.appendJSON(writeCtx, job, n, stop)
		}
	})
	close(exited)
	<-renewed
	cause := context.Cause(workCtx)
	if l := lost.Load(); l != nil {
		cause = *l // it may have lost its hold while stopping the worker for another reason
	}
	stop(nil)
	if !lostHold(cause) {
		// Before the record says the run ended: a client that then asks for
		// the reports finds them, on any replica.
		a.uploadReports(ctx, rec.ID, spec.Reports, log)
	}
	exit := a.settle(ctx, job, terminal, err, cause, log)
	if a.metrics.WorkerExits != nil {
		a.metrics.WorkerExits(exit)
	}
}

// settle records how the job ended and returns the cause for the metrics.
func (a *Agent) settle(ctx context.Context, job *runlog.Job, terminal *terminalMsg, runErr, cause error, log zerolog.Logger) string {
	rec := job.Rec
	finish := func(state, text, summary string) string {
		if err := job.Finish(ctx, state, text, summary); err != nil {
			log.Error().Err(err).Str("state", state).Msg("agent: recording the run's end")
			return "fenced"
		}
		log.Info().Str("state", state).Str("error", text).Msg("agent: job ended")
		return state
	}
	ending := func(text string) bool {
		began := time.Now()
		if err := job.Append(ctx, runlog.EndingMessage(rec.Lane, text), true); err != nil {
			log.Error().Err(err).Msg("agent: writing the run's ending")
			return false
		}
		a.appended(job, began)
		return true
	}
	switch {
	case lostHold(cause):
		// Another attempt holds the run, or may: write and acknowledge
		// nothing; the worker is already stopped.
		log.Warn().Err(cause).Msg("agent: stopped the worker of a run it no longer holds")
		return "fenced"
	case terminal != nil:
		if terminal.failed() {
			return finish(runlog.StateFailed, terminal.text(), "")
		}
		return finish(runlog.StateCompleted, "", terminal.SummaryPath)
	case errors.Is(cause, errCancelled):
		if !ending("run cancelled") {
			return "fenced"
		}
		return finish(runlog.StateCancelled, "run cancelled", "")
	case isLimit(cause):
		log.Warn().Err(cause).Msg("agent: stopped a worker past a limit")
		if !ending(cause.Error()) {
			return "fenced"
		}
		finish(runlog.StateFailed, cause.Error(), "")
		return "limit"
	case errors.Is(cause, errShutdown) && rec.Lane == runlog.LaneTrain:
		return a.release(ctx, job, fmt.Sprintf("attempt %d stopped: agent %s shut down", rec.Attempt, a.cfg.Name), log)
	case errors.Is(runErr, worker.ErrOrphaned):
		// The worker stopped itself: this agent was frozen (or its host
		// hung) past its lease, and another agent may hold the run now.
		// Only a renewal that succeeds says this attempt still does.
		if _, err := job.Renew(ctx); err != nil {
			log.Warn().Err(err).Msg("agent: its worker stopped itself while the agent was frozen; the run is another attempt's")
			return "fenced"
		}
		return a.release(ctx, job, fmt.Sprintf("attempt %d stopped: agent %s was frozen past its lease", rec.Attempt, a.cfg.Name), log)
	default:
		text := "the worker ended without its last message"
		switch {
		case errors.Is(cause, errShutdown):
			text = "le serveur s'arrête : server shutting down"
		case runErr != nil:
			text = runErr.Error()
		}
		if !ending(text) {
			return "fenced"
		}
		return finish(runlog.StateFailed, text, "")
	}
}

// release hands a run this agent still holds back to the queue, saying so
// in its log first.
func (a *Agent) release(ctx context.Context, job *runlog.Job, note string, log zerolog.Logger) string {
	a.appendJSON(ctx, job, &schema.Notification{Type: schema.TypeNotification, Level: schema.LevelWarning, Kind: schema.KindRetry,
		Message: note + "; the run goes back to the queue and starts again on the next agent"}, func(error) {})
	if err := job.Release(ctx, note); err != nil {
		log.Error().Err(err).Msg("agent: handing the run back")
		return "fenced"
	}
	log.Info().Str("note", note).Msg("agent: handed the run back to the queue")
	return "released"
}

// holdLease renews the job's lease every Lease/4 until the worker has
// exited, and sooner when a cancel nudge arrives. It stops the worker when
// the run is cancelled (and holds the lease on while the worker stops), and
// returns once the run is fenced, or its lease could not be renewed for a
// whole lease (this agent is cut off: another will take the run).
func (a *Agent) holdLease(ctx context.Context, exited <-chan struct{}, job *runlog.Job, stop context.CancelCauseFunc, log zerolog.Logger) {
	lease := a.l.Config().Lease
	nudge := make(chan struct{}, 1)
	sub, err := a.l.Conn().Subscribe(runlog.CancelSubject(job.Rec.ID), func(*nats.Msg) {
		select {
		case nudge <- struct{}{}:
		default:
		}
	})
	if err == nil {
		defer sub.Unsubscribe()
	}
	t := time.NewTicker(lease / 4)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-exited:
			return
		case <-t.C:
		case <-nudge:
		}
		rctx, cancel := context.WithTimeout(ctx, lease/4)
		cancelling, err := job.Renew(rctx)
		cancel()
		switch {
		case errors.Is(err, runlog.ErrFenced):
			log.Warn().Err(err).Msg("agent: fenced")
			stop(errFenced)
			return
		case err != nil:
			select {
			case <-exited:
				return
			default:
			}
			log.Warn().Err(err).Dur("since_renewed", time.Since(last)).Msg("agent: renewing the lease")
			if time.Since(last) > lease-lease/8 {
				stop(errLostLease)
				return
			}
		default:
			last = time.Now()
			if cancelling {
				stop(errCancelled) // once: the first cause stays
			}
		}
	}
}

// appendJSON appends v; a failure stops the worker as fenced.
func (a *Agent) appendJSON(ctx context.Context, job *runlog.Job, v any, stop context.CancelCauseFunc) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	began := time.Now()
	if err := job.Append(ctx, b, false); err != nil {
		a.log.Error().Err(err).Str("run_id", job.ID()).Msg("agent: appending to the run's log")
		stop(errFenced)
		return
	}
	a.appended(job, began)
}

func (a *Agent) appended(job *runlog.Job, began time.Time) {
	if a.metrics.Appended != nil {
		a.metrics.Appended(job.ID(), job.Seq(), began)
	}
}

// terminalMsg is the part of a message that says a job ended: a run's
// training_complete or training_error, a forecast's output or error.
type terminalMsg struct {
	Type        string `json:"type"`
	Error       string `json:"error"`
	SummaryPath string `json:"summary_path"`
	Status      string `json:"status"`
	Message     string `json:"message"`
}

func (t *terminalMsg) failed() bool {
	return t.Type == schema.TypeTrainingError || t.Status == schema.StatusError
}

func (t *terminalMsg) text() string {
	if t.Error != "" {
		return t.Error
	}
	return t.Message
}

func parseTerminal(msg []byte) *terminalMsg {
	// Every message passes here, the largest being prediction_delta: look
	// at the ones that can end a job only (schema types put their
	// discriminating field first).
	if !bytes.HasPrefix(msg, []byte(`{"type":"training_`)) && !bytes.HasPrefix(msg, []byte(`{"status":`)) {
		return nil
	}
	var t terminalMsg
	if json.Unmarshal(msg, &t) != nil {
		return nil
	}
	switch {
	case t.Type == schema.TypeTrainingComplete, t.Type == schema.TypeTrainingError,
		t.Status == schema.StatusOutput, t.Status == schema.StatusError:
		return &t
	}
	return nil
}

// resolveData points spec's dataset at a file of this machine holding the
// exact version the job was started on: the path the accepting replica
// gave when it holds those bytes here (one machine), else a copy fetched by
// hash from the log's object store into the cache.
func (a *Agent) resolveData(ctx context.Context, spec *worker.Spec) error {
	d := spec.Data
	if d == nil || d.Path == "" || d.Hash == "" {
		return nil // an embedded dataset: every worker binary holds it
	}
	if hashOf(d.Path) == d.Hash {
		return nil
	}
	cache := a.cfg.Cache
	if cache == "" {
		cache = filepath.Join(filepath.Dir(a.cfg.Reports), "cache")
	}
	p := filepath.Join(cache, d.Hash+".csv")
	if hashOf(p) != d.Hash {
		if err := a.l.FetchBlob(ctx, runlog.DatasetBlob(d.Hash), p); err != nil {
			return fmt.Errorf("dataset %q, version %.12s: not on this machine, and fetching it: %w", d.Name, d.Hash, err)
		}
		if got := hashOf(p); got != d.Hash {
			return fmt.Errorf("dataset %q: the object store's copy has SHA-256 %s, want %s", d.Name, got, d.Hash)
		}
	}
	data := *d
	data.Path = p
	spec.Data = &data
	return nil
}

// hashOf is the SHA-256 of file p in hex, "" when it cannot be read.
func hashOf(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// uploadReports copies the files a run wrote under dir (those whole: not
// a temporary ".name") into the log's object store, where every replica
// serves them (GET /api/runs/{id}/reports).
func (a *Agent) uploadReports(ctx context.Context, id, dir string, log zerolog.Logger) {
	if dir == "" {
		return
	}
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // the run wrote nothing
			}
			return err
		}
		if strings.HasPrefix(d.Name(), ".") || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		n++
		return a.l.PutBlob(ctx, runlog.ReportBlob(id, filepath.ToSlash(rel)), p)
	})
	if err != nil {
		log.Error().Err(err).Msg("agent: storing the run's reports")
		return
	}
	log.Debug().Int("files", n).Msg("agent: stored the run's reports")
}
