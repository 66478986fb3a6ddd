package runlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Event is one message of a run's log.
type Event struct {
	Run      string
	Seq      uint64
	Attempt  int
	Payload  []byte // the JSON object clients get, enveloped
	Terminal bool
	// StreamSeq is the message's position in the events stream (all runs),
	// and Stored when the stream stored it (Follow only).
	StreamSeq uint64
	Stored    time.Time
}

func eventOf(subject string, hdr map[string][]string, data []byte) (Event, error) {
	get := func(k string) string {
		if v := hdr[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	seq, err := strconv.ParseUint(get(hdrSeq), 10, 64)
	if err != nil {
		return Event{}, fmt.Errorf("runlog: a message on %s without %s", subject, hdrSeq)
	}
	attempt, _ := strconv.Atoi(get(hdrAttempt))
	return Event{Run: runIDFromSubject(subject), Seq: seq, Attempt: attempt, Payload: data, Terminal: get(hdrTerminal) != ""}, nil
}

// Follow calls fn with every message appended to any run's log from now
// on, in order within each run, until ctx is done; it calls started once it
// is following, so nothing appended afterwards is missed. It rides out
// server restarts and reconnections (an ordered consumer resumes where it
// was). fn runs on one goroutine and should return quickly.
func (l *Log) Follow(ctx context.Context, fn func(Event), started func()) error {
	// From an explicit position rather than DeliverNew: an ordered consumer
	// that resets before its first message (a missed heartbeat on a loaded
	// machine) starts again from its policy, and "new" would then skip
	// what was appended in between.
	info, err := l.events.Info(ctx)
	if err != nil {
		return fmt.Errorf("runlog: following the events stream: %w", err)
	}
	cons, err := l.events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{eventsSubjects},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    info.State.LastSeq + 1,
	})
	if err != nil {
		return fmt.Errorf("runlog: following the events stream: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("runlog: following the events stream: %w", err)
	}
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	if started != nil {
		started()
	}
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			l.log.Warn().Err(err).Msg("runlog: following the events stream")
			continue
		}
		ev, err := eventOf(m.Subject(), m.Headers(), m.Data())
		if err != nil {
			l.log.Error().Err(err).Msg("runlog: skipped a message")
			continue
		}
		if meta, err := m.Metadata(); err == nil {
			ev.StreamSeq, ev.Stored = meta.Sequence.Stream, meta.Timestamp
		}
		fn(ev)
	}
}

// History returns every message run id's log still holds, in order: from
// seq 1, or from the oldest one the stream's limits have kept.
func (l *Log) History(ctx context.Context, id string) ([]Event, error) {
	last, err := l.events.GetLastMsgForSubject(ctx, eventSubject(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runlog: reading %s's log: %w", id, err)
	}
	cons, err := l.events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{eventSubject(id)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("runlog: reading %s's log: %w", id, err)
	}
	var out []Event
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("runlog: reading %s's log: %w", id, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			ev, err := eventOf(m.Subject(), m.Headers(), m.Data())
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
			meta, err := m.Metadata()
			if err == nil && meta.Sequence.Stream >= last.Sequence {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("runlog: reading %s's log: %w", id, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("runlog: reading %s's log: no message within 5s", id)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// ErrReconnected ends a watch of the records when the connection to NATS
// comes back after it was lost: the server may have restarted, and the
// watch's consumer with it, which the client would notice only once it has
// missed two heartbeats (10 to 20 s, changes missed meanwhile). Watch
// again: the new watch starts with every record as it stands.
var ErrReconnected = errors.New("runlog: the connection to NATS came back; watch again")

// WatchRecords calls fn with every run record as it stands, then ready
// once, then with every change, until ctx is done (it returns nil) or the
// connection comes back after a loss (ErrReconnected); a deleted record
// comes with only its ID and deleted set. fn runs on one goroutine.
func (l *Log) WatchRecords(ctx context.Context, fn func(r Record, deleted bool), ready func()) error {
	reconnected := l.nc.StatusChanged(nats.CONNECTED)
	defer l.nc.RemoveStatusListener(reconnected)
	w, err := l.runs.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("runlog: watching the runs: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-reconnected:
			return ErrReconnected
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil {
				if ready != nil {
					ready()
					ready = nil
				}
				continue
			}
			if op := e.Operation(); op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge {
				fn(Record{ID: e.Key()}, true)
				continue
			}
			var r Record
			if err := json.Unmarshal(e.Value(), &r); err != nil {
				l.log.Error().Err(err).Str("key", e.Key()).Msg("runlog: a run record that does not decode")
				continue
			}
			fn(r, false)
		}
	}
}

// Records returns every run record as it stands.
func (l *Log) Records(ctx context.Context) ([]Record, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out []Record
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- l.WatchRecords(ctx, func(r Record, deleted bool) {
			if !deleted {
				out = append(out, r)
			}
		}, func() { close(done) })
	}()
	select {
	case <-done:
		cancel()
		<-errc
		return out, nil
	case err := <-errc:
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
}

// LastSeq is the events stream's last sequence: once Follow has delivered
// a message at or past it, every message appended before the call has been
// delivered.
func (l *Log) LastSeq(ctx context.Context) (uint64, error) {
	info, err := l.events.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("runlog: the events stream: %w", err)
	}
	return info.State.LastSeq, nil
}
