package runlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/schema"
)

// Errors of the log's vocabulary.
var (
	// ErrQueueFull: Config.MaxQueued jobs already wait in that lane.
	ErrQueueFull = errors.New("too many jobs queued")
	// ErrUnknownRun: no record of that ID (never existed, or pruned).
	ErrUnknownRun = errors.New("unknown run")
	// ErrEnded: the run has already ended.
	ErrEnded = errors.New("run already ended")
	// ErrFenced: another attempt holds the run; this writer must stop
	// without writing anything more.
	ErrFenced = errors.New("fenced: another attempt holds the run")
)

// Log is a connection to the run log. It is safe for concurrent use.
type Log struct {
	cfg    Config
	nc     *nats.Conn
	js     jetstream.JetStream
	jobs   jetstream.Stream
	events jetstream.Stream
	runs   jetstream.KeyValue
	agents jetstream.KeyValue
	blobs  jetstream.ObjectStore
	log    zerolog.Logger
}

// Open creates or updates the streams, buckets and consumers the log uses
// on nc's JetStream, and returns the log.
func Open(ctx context.Context, nc *nats.Conn, cfg Config, log zerolog.Logger) (*Log, error) {
	cfg = cfg.withDefaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("runlog: %w", err)
	}
	l := &Log{cfg: cfg, nc: nc, js: js, log: log}
	storage := jetstream.FileStorage
	l.jobs, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        jobsStream,
		Description: "Kairoscope jobs waiting for, or held by, an agent",
		Subjects:    []string{jobsSubjects},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     storage,
		Replicas:    cfg.Replicas,
		// One message per job: a republish of a job already queued is
		// refused rather than run twice.
		MaxMsgsPerSubject:    1,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		MaxAge:               7 * 24 * time.Hour,
		Duplicates:           2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("runlog: the jobs stream: %w", err)
	}
	l.events, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              eventsStream,
		Description:       "Kairoscope run messages, one subject per run",
		Subjects:          []string{eventsSubjects},
		Retention:         jetstream.LimitsPolicy,
		Storage:           storage,
		Replicas:          cfg.Replicas,
		MaxMsgsPerSubject: int64(cfg.History),
		MaxAge:            cfg.MaxAge,
		MaxBytes:          cfg.EventBytes,
		Discard:           jetstream.DiscardOld,
		MaxMsgSize:        8 << 20,
		Duplicates:        2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("runlog: the events stream: %w", err)
	}
	l.runs, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: runsBucket, Description: "Kairoscope run records", History: 1, Storage: storage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("runlog: the runs bucket: %w", err)
	}
	l.agents, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: agentsBucket, Description: "Kairoscope agents, by heartbeat", History: 1, Storage: jetstream.MemoryStorage,
		Replicas: cfg.Replicas, TTL: agentTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("runlog: the agents bucket: %w", err)
	}
	l.blobs, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: blobsBucket, Description: "Kairoscope run reports", Storage: storage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("runlog: the blobs bucket: %w", err)
	}
	for _, lane := range Lanes {
		for _, class := range Classes {
			_, err := l.jobs.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
				Durable:       consumerName(lane, class),
				FilterSubject: "kairo.jobs." + lane + "." + class + ".>",
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       cfg.Lease,
				// Attempts are counted in the record (a crash can lose the
				// delivery count), so JetStream redelivers without limit.
				MaxDeliver:    -1,
				MaxAckPending: 10000,
			})
			if err != nil {
				return nil, fmt.Errorf("runlog: the %s/%s consumer: %w", lane, class, err)
			}
		}
	}
	return l, nil
}

// Attach connects to a log that a serve replica has already opened,
// changing nothing in it: what an agent does. The lease is the jobs'
// AckWait as the replica set it, so every agent renews in time.
func Attach(ctx context.Context, nc *nats.Conn, log zerolog.Logger) (*Log, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("runlog: %w", err)
	}
	l := &Log{nc: nc, js: js, log: log}
	missing := func(what string, err error) error {
		return fmt.Errorf("runlog: %s: %w (has a kairoscope serve replica started on this NATS?)", what, err)
	}
	if l.jobs, err = js.Stream(ctx, jobsStream); err != nil {
		return nil, missing("the jobs stream", err)
	}
	if l.events, err = js.Stream(ctx, eventsStream); err != nil {
		return nil, missing("the events stream", err)
	}
	if l.runs, err = js.KeyValue(ctx, runsBucket); err != nil {
		return nil, missing("the runs bucket", err)
	}
	if l.agents, err = js.KeyValue(ctx, agentsBucket); err != nil {
		return nil, missing("the agents bucket", err)
	}
	if l.blobs, err = js.ObjectStore(ctx, blobsBucket); err != nil {
		return nil, missing("the blobs bucket", err)
	}
	c, err := l.jobs.Consumer(ctx, consumerName(LaneTrain, ClassAny))
	if err != nil {
		return nil, missing("the job consumers", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, missing("the job consumers", err)
	}
	l.cfg = Config{Lease: info.Config.AckWait}.withDefaults()
	return l, nil
}

// Config returns the log's configuration, defaults filled in.
func (l *Log) Config() Config { return l.cfg }

// Conn is the NATS connection under the log.
func (l *Log) Conn() *nats.Conn { return l.nc }

// NewID returns a fresh run ID with prefix (RunPrefix or ForecastPrefix).
func NewID(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Submit records rec as queued and puts its job in the queue of its lane
// and class, unless maxQueued jobs already wait in that lane
// (ErrQueueFull). rec.ID, Lane, Class, Spec and Device must be set.
func (l *Log) Submit(ctx context.Context, rec Record, maxQueued int) (Record, error) {
	queued, err := l.queued(ctx, rec.Lane)
	if err != nil {
		return Record{}, err
	}
	if queued >= maxQueued {
		return Record{}, fmt.Errorf("%w: %d %s jobs are waiting; try again later or cancel one", ErrQueueFull, queued, rec.Lane)
	}
	rec.State, rec.Created, rec.MaxRetries = StateQueued, time.Now().UTC(), l.cfg.MaxRetries
	b, err := json.Marshal(rec)
	if err != nil {
		return Record{}, err
	}
	// The record first: an agent that takes the job finds it.
	if _, err := l.runs.Create(ctx, rec.ID, b); err != nil {
		return Record{}, fmt.Errorf("runlog: recording %s: %w", rec.ID, err)
	}
	if err := l.enqueue(ctx, rec, "0"); err != nil {
		l.runs.Purge(context.WithoutCancel(ctx), rec.ID)
		return Record{}, err
	}
	return rec, nil
}

// enqueue publishes rec's job message; gen tells republications apart for
// the duplicate window.
func (l *Log) enqueue(ctx context.Context, rec Record, gen string) error {
	job, _ := json.Marshal(jobMsg{RunID: rec.ID})
	if _, err := l.js.Publish(ctx, jobSubject(rec.Lane, rec.Class, rec.ID), job, jetstream.WithMsgID(rec.ID+"."+gen)); err != nil {
		return fmt.Errorf("runlog: queueing %s: %w", rec.ID, err)
	}
	l.nc.Publish(wakePrefix+rec.Lane, nil) // agents waiting on the lane look now
	return nil
}

// jobMsg is the job message's body: the record holds the rest.
type jobMsg struct {
	RunID string `json:"run_id"`
}

// queued counts the jobs of lane no agent has taken yet.
func (l *Log) queued(ctx context.Context, lane string) (int, error) {
	n := 0
	for _, class := range Classes {
		d, err := l.QueueDepth(ctx, lane, class)
		if err != nil {
			return 0, err
		}
		n += d
	}
	return n, nil
}

// QueueDepth counts the jobs of lane and class waiting for an agent.
func (l *Log) QueueDepth(ctx context.Context, lane, class string) (int, error) {
	// The consumer's NumPending counts new messages asynchronously: a job
	// whose publish has just returned may not be in it yet. The stream's
	// per-subject count is exact; the jobs taken (unacked until their end)
	// are the consumer's NumAckPending, which it updates as it delivers.
	si, err := l.jobs.Info(ctx, jetstream.WithSubjectFilter(jobSubject(lane, class, "*")))
	if err != nil {
		return 0, fmt.Errorf("runlog: the %s/%s queue: %w", lane, class, err)
	}
	stored := 0
	for _, n := range si.State.Subjects {
		stored += int(n)
	}
	c, err := l.jobs.Consumer(ctx, consumerName(lane, class))
	if err != nil {
		return 0, fmt.Errorf("runlog: the %s/%s queue: %w", lane, class, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("runlog: the %s/%s queue: %w", lane, class, err)
	}
	return max(stored-info.NumAckPending, 0), nil
}

// Get returns run id's record and its revision.
func (l *Log) Get(ctx context.Context, id string) (Record, uint64, error) {
	e, err := l.runs.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return Record{}, 0, fmt.Errorf("%w %q", ErrUnknownRun, id)
	}
	if err != nil {
		return Record{}, 0, fmt.Errorf("runlog: reading %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Record{}, 0, fmt.Errorf("runlog: record %s: %w", id, err)
	}
	return r, e.Revision(), nil
}

// put writes r if its key is still at revision rev, returning the new
// revision; jetstream.ErrKeyExists or ErrKeyRevisionMismatch when another
// writer came first.
func (l *Log) put(ctx context.Context, r Record, rev uint64) (uint64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	return l.runs.Update(ctx, r.ID, b, rev)
}

// conflict reports whether err is a lost compare-and-swap.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// errNoChange stops update without writing.
var errNoChange = errors.New("no change")

// update applies fn to run id's record and writes it back with
// compare-and-swap, reading and trying again when another writer came
// first. fn returning errNoChange leaves the record as it is (update
// returns it and nil); another error aborts.
func (l *Log) update(ctx context.Context, id string, fn func(r *Record) error) (Record, uint64, error) {
	for try := 0; ; try++ {
		r, rev, err := l.Get(ctx, id)
		if err != nil {
			return Record{}, 0, err
		}
		if err := fn(&r); errors.Is(err, errNoChange) {
			return r, rev, nil
		} else if err != nil {
			return r, rev, err
		}
		rev, err = l.put(ctx, r, rev)
		if err == nil {
			return r, rev, nil
		}
		if !conflict(err) || try >= 20 {
			return Record{}, 0, fmt.Errorf("runlog: updating %s: %w", id, err)
		}
	}
}

// Cancel stops run id: a queued run ends at once, cancelled; a running
// one becomes cancelling, and its agent stops the worker and ends it.
// Cancelling twice is harmless; an ended run gives ErrEnded.
func (l *Log) Cancel(ctx context.Context, id string) (Record, error) {
	var wasQueued bool
	rec, _, err := l.update(ctx, id, func(r *Record) error {
		switch r.State {
		case StateQueued:
			wasQueued = true
			now := time.Now().UTC()
			r.State, r.Ended, r.Error = StateCancelled, &now, "cancelled before it started"
			r.Attempt++ // the ending below is written as a new attempt: an old holder is fenced
			return nil
		case StateRunning:
			wasQueued = false
			r.State = StateCancelling
			return nil
		case StateCancelling:
			return errNoChange
		default:
			return fmt.Errorf("%w: %s is %s", ErrEnded, id, r.State)
		}
	})
	if err != nil {
		return rec, err
	}
	if wasQueued {
		l.dropJob(ctx, rec)
		if err := l.writeEnding(ctx, rec, "run cancelled before it started"); err != nil {
			l.log.Warn().Err(err).Str("run_id", id).Msg("runlog: writing a cancelled run's ending")
		}
		return rec, nil
	}
	l.nc.Publish(cancelPrefix+id, nil) // the agent also sees it at its next renewal
	return rec, nil
}

// dropJob deletes rec's job message, if it is still queued.
func (l *Log) dropJob(ctx context.Context, rec Record) {
	m, err := l.jobs.GetLastMsgForSubject(ctx, jobSubject(rec.Lane, rec.Class, rec.ID))
	if err == nil {
		l.jobs.DeleteMsg(ctx, m.Sequence)
	}
}

// writeEnding appends the terminal message of a run that no worker ended
// (cancelled while queued, given up, or whose agent was lost while
// cancelling), as attempt rec.Attempt.
func (l *Log) writeEnding(ctx context.Context, rec Record, text string) error {
	w, err := l.Writer(ctx, rec.ID, rec.Attempt)
	if err != nil {
		return err
	}
	return w.Append(ctx, EndingMessage(rec.Lane, text), true)
}

// EndingMessage is the terminal message of a lane's job that failed or was
// cancelled without its worker saying so: training_error for a run, the
// seed's error status for a forecast.
func EndingMessage(lane, text string) []byte {
	var v any = &schema.TrainingError{Type: schema.TypeTrainingError, Error: text}
	if lane == LaneForecast {
		v = &schema.PredictError{Status: schema.StatusError, Message: text}
	}
	b, _ := json.Marshal(v)
	return b
}
