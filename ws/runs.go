package ws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/ws/hub"
)

// records mirrors the run log's records in memory, from a watch on the
// bucket: what GET /api/runs lists, the same on every replica within
// moments of a change.
type records struct {
	l     *runlog.Log
	log   zerolog.Logger
	ready chan struct{} // closed once the mirror holds every record

	mu   sync.RWMutex
	recs map[string]runlog.Record
	// onChange is told of every record change (after the mirror has it).
	onChange func(runlog.Record)
}

func newRecords(l *runlog.Log, log zerolog.Logger) *records {
	return &records{l: l, log: log, ready: make(chan struct{}), recs: map[string]runlog.Record{}}
}

// watch keeps the mirror until ctx is done, watching again after a
// failure or a reconnection (a NATS server restart). Each watch starts
// with every record as it stands, so a new one also drops the records
// deleted while the mirror was not watching.
func (rs *records) watch(ctx context.Context) {
	again(ctx, rs.log, "watching the run records", rs.ready, func(ready func()) error {
		seen := map[string]bool{} // the records of the watch's first pass; nil after it
		return rs.l.WatchRecords(ctx, func(r runlog.Record, deleted bool) {
			rs.mu.Lock()
			if deleted {
				delete(rs.recs, r.ID)
			} else {
				rs.recs[r.ID] = r
				if seen != nil {
					seen[r.ID] = true
				}
			}
			rs.mu.Unlock()
			if !deleted && rs.onChange != nil {
				rs.onChange(r)
			}
		}, func() {
			rs.mu.Lock()
			for id := range rs.recs {
				if !seen[id] {
					delete(rs.recs, id)
				}
			}
			seen = nil
			rs.mu.Unlock()
			ready()
		})
	})
}

// again runs do until ctx is done, again a second after each return (a
// NATS server restart, a broken watch) or at once after a reconnection,
// and closes ready the first time do calls the function it is given.
func again(ctx context.Context, log zerolog.Logger, what string, ready chan struct{}, do func(ready func()) error) {
	var once sync.Once
	signal := func() { once.Do(func() { close(ready) }) }
	for ctx.Err() == nil {
		err := do(signal)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, runlog.ErrReconnected) {
			log.Info().Msgf("ws: reconnected to NATS; %s again", what)
			continue
		}
		log.Warn().Err(err).Msgf("ws: %s; again in 1s", what)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// submitted puts a record this replica has just created into the mirror,
// unless the watch has brought it already: the requests that follow on
// this replica see it at once (a DELETE of the dataset it uses, the run
// list), not only once the watch delivers it.
func (rs *records) submitted(r runlog.Record) {
	rs.mu.Lock()
	if _, ok := rs.recs[r.ID]; !ok {
		rs.recs[r.ID] = r
	}
	rs.mu.Unlock()
}

// get returns run id's record: from the mirror, or from the log for one
// that another replica has just created.
func (rs *records) get(ctx context.Context, id string) (runlog.Record, error) {
	rs.mu.RLock()
	r, ok := rs.recs[id]
	rs.mu.RUnlock()
	if ok {
		return r, nil
	}
	if !runlog.ValidID(id) {
		return runlog.Record{}, fmt.Errorf("%w %q", runlog.ErrUnknownRun, id)
	}
	r, _, err := rs.l.Get(ctx, id)
	return r, err
}

// list returns the records of lane, oldest first.
func (rs *records) list(lane string) []runlog.Record {
	rs.mu.RLock()
	out := make([]runlog.Record, 0, len(rs.recs))
	for _, r := range rs.recs {
		if r.Lane == lane {
			out = append(out, r)
		}
	}
	rs.mu.RUnlock()
	slices.SortFunc(out, func(a, b runlog.Record) int { return a.Created.Compare(b.Created) })
	return out
}

// all returns every record.
func (rs *records) all() []runlog.Record {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	out := make([]runlog.Record, 0, len(rs.recs))
	for _, r := range rs.recs {
		out = append(out, r)
	}
	return out
}

// count returns how many records of lane are in state.
func (rs *records) count(lane, state string) int {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	n := 0
	for _, r := range rs.recs {
		if r.Lane == lane && (state == "" && runlog.Active(r.State) || r.State == state) {
			n++
		}
	}
	return n
}

// feed carries the log's messages into the hubs: live ones as they are
// appended, and whole histories loaded on demand.
type feed struct {
	l         *runlog.Log
	log       zerolog.Logger
	runs      *hub.Hub // /ws: ids with runlog.RunPrefix
	forecasts *hub.Hub // /ws/predict: ids with runlog.ForecastPrefix
	started   chan struct{}
	streamSeq atomic.Uint64 // the events stream sequence of the last one
	lag       prometheus.Observer
}

func (f *feed) hubFor(id string) *hub.Hub {
	if strings.HasPrefix(id, runlog.ForecastPrefix) {
		return f.forecasts
	}
	return f.runs
}

func message(ev runlog.Event) hub.Message {
	return hub.Message{Stream: ev.Run, Seq: ev.Seq, Payload: ev.Payload, Terminal: ev.Terminal}
}

// follow delivers live messages until ctx is done.
func (f *feed) follow(ctx context.Context) {
	again(ctx, f.log, "following the run log", f.started, func(started func()) error {
		return f.l.Follow(ctx, func(ev runlog.Event) {
			f.hubFor(ev.Run).Append(message(ev))
			f.streamSeq.Store(ev.StreamSeq)
			if f.lag != nil && !ev.Stored.IsZero() {
				f.lag.Observe(time.Since(ev.Stored).Seconds())
			}
		}, started)
	})
}

// ensure makes sure run id's hub has its history, loading it from the log
// when the hub does not (a replica that started after the run, or a run
// whose history the hub has dropped).
func (f *feed) ensure(ctx context.Context, id string) error {
	h := f.hubFor(id)
	if h.Cached(id) {
		return nil
	}
	evs, err := f.l.History(ctx, id)
	if err != nil {
		return err
	}
	msgs := make([]hub.Message, len(evs))
	for i, ev := range evs {
		msgs[i] = message(ev)
	}
	h.Load(id, msgs)
	return nil
}

// parseSince reads ?since=RUN:SEQ,RUN:SEQ… (at most 100 runs).
func parseSince(s string) (map[string]uint64, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > 100 {
		return nil, errors.New("since: at most 100 runs")
	}
	out := make(map[string]uint64, len(parts))
	for _, p := range parts {
		id, seq, ok := strings.Cut(p, ":")
		n, err := strconv.ParseUint(seq, 10, 64)
		if !ok || err != nil || !runlog.ValidID(id) {
			return nil, fmt.Errorf("since: want RUN:SEQ[,RUN:SEQ…] with the run IDs and the last seq received, got %q", p)
		}
		out[id] = n
	}
	return out, nil
}

// errNotFound reports an unknown run for HTTP 404.
func errNotFound(err error) bool {
	return errors.Is(err, runlog.ErrUnknownRun) || errors.Is(err, jetstream.ErrKeyNotFound)
}

// drain waits, up to wait, until the feed has delivered every message
// appended so far: at shutdown, so that clients get how their runs ended
// before they are closed.
func (f *feed) drain(ctx context.Context, wait time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	last, err := f.l.LastSeq(ctx)
	if err != nil {
		return
	}
	for f.streamSeq.Load() < last && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}
