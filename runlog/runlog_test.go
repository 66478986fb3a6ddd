package runlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// testLease is short, so that a lost holder shows within seconds.
const testLease = time.Second

type testLog struct {
	*Log
	emb *Embedded
	dir string
}

func openTest(t *testing.T, dir string, cfg Config) *testLog {
	t.Helper()
	emb, err := StartEmbedded(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Lease == 0 {
		cfg.Lease = testLease
	}
	l, err := Open(context.Background(), nc, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	tl := &testLog{Log: l, emb: emb, dir: dir}
	t.Cleanup(tl.shutdown)
	return tl
}

func (tl *testLog) shutdown() {
	tl.nc.Close()
	tl.emb.Shutdown()
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func submit(t *testing.T, l *testLog) Record {
	t.Helper()
	req := schema.RunRequest{Dataset: "bike"}
	rec, err := l.Submit(ctxT(t, 5*time.Second), Record{ID: NewID(RunPrefix), Lane: LaneTrain, Class: ClassAny, Request: &req,
		Spec: worker.Spec{Run: &req}, Device: "auto"}, 8)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func take(t *testing.T, l *testLog, agent, inc string, within time.Duration) *Job {
	t.Helper()
	tk, err := l.Taker(ctxT(t, 5*time.Second), agent, inc, []string{ClassAny, ClassCPU})
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Close()
	j, err := tk.Take(ctxT(t, within), LaneTrain)
	if err != nil {
		t.Fatalf("%s/%s took no job within %v: %v", agent, inc, within, err)
	}
	return j
}

func history(t *testing.T, l *testLog, id string) []Event {
	t.Helper()
	evs, err := l.History(ctxT(t, 10*time.Second), id)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func msg(n int) []byte { return fmt.Appendf(nil, `{"type":"epoch_metrics","epoch":%d}`, n) }

// Two attempts never interleave: once attempt 2 has written, attempt 1's
// appends fail with ErrFenced, and a late message of attempt 1 that came in
// first is stepped over, not overwritten.
func TestWriterFencing(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{})
	ctx := ctxT(t, 10*time.Second)
	id := NewID(RunPrefix)
	w1, err := l.Writer(ctx, id, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := w1.Append(ctx, msg(i), false); err != nil {
			t.Fatal(err)
		}
	}
	w2, err := l.Writer(ctx, id, 2)
	if err != nil || w2.Seq() != 2 {
		t.Fatalf("attempt 2 opened at seq %v: %v", w2, err)
	}
	// Attempt 1 is not yet fenced: attempt 2 has written nothing.
	if err := w1.Append(ctx, msg(2), false); err != nil {
		t.Fatal(err)
	}
	if err := w2.Append(ctx, msg(100), false); err != nil {
		t.Fatalf("attempt 2 after a late message of attempt 1: %v", err)
	}
	if err := w1.Append(ctx, msg(3), false); !errors.Is(err, ErrFenced) {
		t.Fatalf("attempt 1 after attempt 2 wrote: %v, want ErrFenced", err)
	}
	if _, err := l.Writer(ctx, id, 1); !errors.Is(err, ErrFenced) {
		t.Fatalf("a new writer of attempt 1: %v, want ErrFenced", err)
	}
	if err := w2.Append(ctx, []byte(`{"type":"training_complete"}`), true); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Writer(ctx, id, 3); !errors.Is(err, ErrEnded) {
		t.Fatalf("a writer after the terminal message: %v, want ErrEnded", err)
	}
	evs := history(t, l, id)
	var got []string
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Errorf("message %d has seq %d", i, ev.Seq)
		}
		var m struct {
			Epoch   *int   `json:"epoch"`
			Attempt int    `json:"attempt"`
			RunID   string `json:"run_id"`
		}
		json.Unmarshal(ev.Payload, &m)
		if m.RunID != id || m.Attempt != ev.Attempt {
			t.Errorf("message %d: envelope %s", i, ev.Payload)
		}
		got = append(got, fmt.Sprintf("%d@%d", ev.Seq, ev.Attempt))
	}
	if s := strings.Join(got, " "); s != "1@1 2@1 3@1 4@2 5@2" || !evs[4].Terminal {
		t.Errorf("log %s (last terminal %v), want 1@1 2@1 3@1 4@2 5@2", s, evs[len(evs)-1].Terminal)
	}
}

// A retried publish whose first try landed (its acknowledgement lost) is
// recognised, not written twice, whatever the server version answers.
func TestWriterRetryThatLanded(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{})
	ctx := ctxT(t, 10*time.Second)
	id := NewID(RunPrefix)
	w, _ := l.Writer(ctx, id, 1)
	w.Append(ctx, msg(0), false)
	seq, last := w.seq, w.last
	w.Append(ctx, msg(1), false)
	w.seq, w.last = seq, last // as if the second publish's ack never came
	if err := w.Append(ctx, msg(1), false); err != nil {
		t.Fatal(err)
	}
	if evs := history(t, l, id); len(evs) != 2 || w.Seq() != 2 {
		t.Errorf("%d messages, writer at seq %d; want 2 and 2", len(evs), w.Seq())
	}
}

// A job whose holder stops renewing goes to another agent as attempt 2,
// counted as a retry with a note; the old holder is fenced from the log and
// the record, and its acknowledgement never lands.
func TestLostHolderRetries(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{})
	rec := submit(t, l)
	a := take(t, l, "a", "1", 5*time.Second)
	if a.Rec.ID != rec.ID || a.Rec.Attempt != 1 || a.Rec.State != StateRunning || a.Rec.Agent != "a" {
		t.Fatalf("taken %+v", a.Rec)
	}
	ctx := ctxT(t, 20*time.Second)
	if err := a.Append(ctx, msg(0), false); err != nil {
		t.Fatal(err)
	}
	// a goes silent; b gets the job once the lease and AckWait run out.
	b := take(t, l, "b", "1", 10*time.Second)
	if b.Rec.Attempt != 2 || b.Rec.Retries != 1 || len(b.Rec.Notes) != 1 || !strings.Contains(b.Rec.Notes[0], "lost its agent a") {
		t.Fatalf("second attempt %+v", b.Rec)
	}
	if err := b.Append(ctx, msg(0), false); err != nil {
		t.Fatal(err)
	}
	if err := a.Append(ctx, msg(1), false); !errors.Is(err, ErrFenced) {
		t.Errorf("the old holder's append: %v, want ErrFenced", err)
	}
	if _, err := a.Renew(ctx); !errors.Is(err, ErrFenced) {
		t.Errorf("the old holder's renewal: %v, want ErrFenced", err)
	}
	if err := a.Finish(ctx, StateCompleted, "", ""); !errors.Is(err, ErrFenced) {
		t.Errorf("the old holder's finish: %v, want ErrFenced", err)
	}
	if err := b.Append(ctx, []byte(`{"type":"training_complete"}`), true); err != nil {
		t.Fatal(err)
	}
	if err := b.Finish(ctx, StateCompleted, "", "s.json"); err != nil {
		t.Fatal(err)
	}
	got, _, _ := l.Get(ctx, rec.ID)
	if got.State != StateCompleted || got.Attempt != 2 || got.Messages != 3 || got.SummaryPath != "s.json" {
		t.Errorf("final record %+v", got)
	}
}

// Past MaxRetries, losing the holder fails the run, with its ending in
// the log.
func TestRetriesAreCapped(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{MaxRetries: -1}) // no retry at all
	rec := submit(t, l)
	take(t, l, "a", "1", 5*time.Second)
	tk, _ := l.Taker(ctxT(t, 5*time.Second), "b", "1", []string{ClassAny})
	defer tk.Close()
	ctx := ctxT(t, 10*time.Second)
	go tk.Take(ctx, LaneTrain) // settles the redelivered job
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _, _ := l.Get(ctx, rec.ID)
		if got.State == StateFailed {
			if !strings.Contains(got.Error, "gave up after 0 retries") {
				t.Errorf("error %q", got.Error)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("record %+v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	evs := history(t, l, rec.ID)
	if len(evs) != 1 || !evs[0].Terminal || !strings.Contains(string(evs[0].Payload), `"type":"training_error"`) {
		t.Errorf("log %v", evs)
	}
}

// A run whose attempt wrote its ending but not its record (its agent died,
// or lost its lease, in between) is settled from the log when its job is
// taken again: a training_error fails it, training_complete completes it.
func TestEndedLogSettlesTheRecord(t *testing.T) {
	for _, tc := range []struct {
		ending, state, text, summary string
	}{
		{`{"type":"training_error","error":"context canceled (fold 0)"}`, StateFailed, "context canceled (fold 0)", ""},
		{`{"type":"training_complete","folds_completed":1,"summary_path":"r/summary.json"}`, StateCompleted, "", "r/summary.json"},
	} {
		t.Run(tc.state, func(t *testing.T) {
			l := openTest(t, t.TempDir(), Config{})
			rec := submit(t, l)
			a := take(t, l, "a", "1", 5*time.Second)
			ctx := ctxT(t, 20*time.Second)
			if err := a.Append(ctx, msg(0), false); err != nil {
				t.Fatal(err)
			}
			if err := a.Append(ctx, []byte(tc.ending), true); err != nil {
				t.Fatal(err)
			}
			// a is gone before Finish; b gets the job once the lease runs out.
			tk, err := l.Taker(ctx, "b", "1", []string{ClassAny})
			if err != nil {
				t.Fatal(err)
			}
			defer tk.Close()
			tctx, cancel := context.WithCancel(ctx)
			taken := make(chan *Job, 1)
			go func() { j, _ := tk.Take(tctx, LaneTrain); taken <- j }()
			defer func() { cancel(); <-taken }()
			deadline := time.Now().Add(10 * time.Second)
			for {
				got, _, err := l.Get(ctx, rec.ID)
				if err == nil && Ended(got.State) {
					if got.State != tc.state || got.Error != tc.text || got.SummaryPath != tc.summary || got.Messages != 2 {
						t.Errorf("record %+v, want %s with error %q, summary %q, 2 messages", got, tc.state, tc.text, tc.summary)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("record %+v %v", got, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if evs := history(t, l, rec.ID); len(evs) != 2 {
				t.Errorf("%d messages in the log, want the 2 attempt 1 wrote", len(evs))
			}
		})
	}
}

// Cancelling a queued run ends it at once, with its ending in the log and
// its job gone; cancelling a running one marks it for its holder; twice is
// harmless; an ended run refuses.
func TestCancel(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{})
	ctx := ctxT(t, 20*time.Second)
	q := submit(t, l)
	got, err := l.Cancel(ctx, q.ID)
	if err != nil || got.State != StateCancelled {
		t.Fatalf("%+v %v", got, err)
	}
	if evs := history(t, l, q.ID); len(evs) != 1 || !strings.Contains(string(evs[0].Payload), "cancelled before it started") {
		t.Errorf("log %v", evs)
	}
	if _, err := l.Cancel(ctx, q.ID); !errors.Is(err, ErrEnded) {
		t.Errorf("cancelling an ended run: %v, want ErrEnded", err)
	}
	r := submit(t, l)
	j := take(t, l, "a", "1", 5*time.Second) // not the cancelled one: its job is gone
	if j.Rec.ID != r.ID {
		t.Fatalf("took %s, want %s", j.Rec.ID, r.ID)
	}
	if got, err := l.Cancel(ctx, r.ID); err != nil || got.State != StateCancelling {
		t.Fatalf("%+v %v", got, err)
	}
	if got, err := l.Cancel(ctx, r.ID); err != nil || got.State != StateCancelling {
		t.Fatalf("twice: %+v %v", got, err)
	}
	if cancelling, err := j.Renew(ctx); err != nil || !cancelling {
		t.Fatalf("the holder's renewal: %v %v, want cancelling", cancelling, err)
	}
	if err := j.Append(ctx, EndingMessage(LaneTrain, "run cancelled"), true); err != nil {
		t.Fatal(err)
	}
	if err := j.Finish(ctx, StateCancelled, "run cancelled", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Cancel(ctx, "run_000000000000"); !errors.Is(err, ErrUnknownRun) {
		t.Errorf("unknown run: %v", err)
	}
}

// A restarted agent (same name, new incarnation) takes back its runs at
// once rather than after the lease.
func TestReclaim(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{Lease: time.Minute})
	rec := submit(t, l)
	take(t, l, "a", "1", 5*time.Second)
	ctx := ctxT(t, 10*time.Second)
	recs, err := l.Records(ctx)
	if err != nil || len(recs) != 1 {
		t.Fatal(recs, err)
	}
	tk, _ := l.Taker(ctx, "a", "2", []string{ClassAny})
	defer tk.Close()
	tk.Reclaim(ctx, recs)
	start := time.Now()
	j, err := tk.Take(ctxT(t, 5*time.Second), LaneTrain)
	if err != nil || j.Rec.ID != rec.ID || j.Rec.Attempt != 2 || j.Rec.Incarnation != "2" {
		t.Fatalf("%v %v", j, err)
	}
	t.Logf("taken back in %v (lease %v)", time.Since(start), time.Minute)
}

// A run whose job message a late acknowledgement deleted is queued again
// by Reap, never lost.
func TestReap(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{})
	rec := submit(t, l)
	take(t, l, "a", "1", 5*time.Second)
	ctx := ctxT(t, 20*time.Second)
	l.dropJob(ctx, rec) // what a zombie's late ack does
	time.Sleep(2*testLease + 200*time.Millisecond)
	recs, _ := l.Records(ctx)
	l.Reap(ctx, recs)
	j := take(t, l, "b", "1", 5*time.Second)
	if j.Rec.ID != rec.ID || j.Rec.Attempt != 2 {
		t.Fatalf("%+v", j.Rec)
	}
}

// Reap acts on the record as it stands, not on the stale copy it is given
// (a replica's mirror that has not caught up): a run that ended is not
// queued again.
func TestReapReadsTheRecordAgain(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{})
	rec := submit(t, l)
	j := take(t, l, "a", "1", 5*time.Second)
	mirrored := j.Rec // running, with a lease
	ctx := ctxT(t, 20*time.Second)
	if err := j.Append(ctx, []byte(`{"type":"training_complete"}`), true); err != nil {
		t.Fatal(err)
	}
	if err := j.Finish(ctx, StateCompleted, "", ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2*testLease + 200*time.Millisecond)
	l.Reap(ctx, []Record{mirrored})
	if _, err := l.jobs.GetLastMsgForSubject(ctx, jobSubject(rec.Lane, rec.Class, rec.ID)); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("a job message for the completed run after Reap: %v", err)
	}
}

// Records, logs and queued jobs survive a restart of the server on its
// store; Follow delivers new messages, and History the whole log.
func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, Config{})
	ctx := ctxT(t, 20*time.Second)
	rec := submit(t, l)
	w, _ := l.Writer(ctx, rec.ID, 1)
	w.Append(ctx, msg(0), false)
	l.shutdown()

	l2 := openTest(t, dir, Config{})
	got, _, err := l2.Get(ctx, rec.ID)
	if err != nil || got.State != StateQueued {
		t.Fatalf("%+v %v", got, err)
	}
	followed := make(chan Event, 4)
	started := make(chan struct{})
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	go l2.Follow(fctx, func(ev Event) { followed <- ev }, func() { close(started) })
	<-started
	w2, err := l2.Writer(ctx, rec.ID, 1)
	if err != nil || w2.Seq() != 1 {
		t.Fatalf("%v %v", w2, err)
	}
	w2.Append(ctx, msg(1), false)
	select {
	case ev := <-followed:
		if ev.Run != rec.ID || ev.Seq != 2 {
			t.Errorf("followed %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Follow delivered nothing")
	}
	if evs := history(t, l2, rec.ID); len(evs) != 2 {
		t.Errorf("%d messages after the restart", len(evs))
	}
	if j := take(t, l2, "a", "1", 5*time.Second); j.Rec.ID != rec.ID {
		t.Errorf("took %s", j.Rec.ID)
	}
}

// A watch of the records ends with ErrReconnected once the client is back
// on a restarted server, rather than going deaf until its consumer's
// heartbeats are missed; a new watch sees what changed.
func TestWatchRecordsEndsOnReconnect(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	emb, err := StartEmbedded(dir, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { emb.Shutdown() }()
	nc, err := nats.Connect(emb.URL(), ClientOptions("test")...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	l, err := Open(ctxT(t, 5*time.Second), nc, Config{Lease: testLease}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 30*time.Second)
	rec := submit(t, &testLog{Log: l})
	ready := make(chan struct{})
	ended := make(chan error, 1)
	go func() { ended <- l.WatchRecords(ctx, func(Record, bool) {}, func() { close(ready) }) }()
	<-ready
	emb.Shutdown()
	if emb, err = StartEmbedded(dir, addr); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	select {
	case err := <-ended:
		if !errors.Is(err, ErrReconnected) {
			t.Fatalf("the watch ended with %v, want ErrReconnected", err)
		}
		t.Logf("the watch ended %v after the restart", time.Since(restarted).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("the watch went on for 5 s after the client reconnected to a restarted server")
	}
	if _, err := l.Cancel(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	recs, err := l.Records(ctx)
	if err != nil || len(recs) != 1 || recs[0].State != StateCancelled {
		t.Errorf("records after the restart %+v %v, want the run cancelled", recs, err)
	}
}

// Submit refuses past the lane's queue limit.
func TestQueueFull(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{})
	ctx := ctxT(t, 10*time.Second)
	req := schema.RunRequest{}
	for i := range 3 {
		_, err := l.Submit(ctx, Record{ID: NewID(RunPrefix), Lane: LaneTrain, Class: ClassCPU, Request: &req, Spec: worker.Spec{Run: &req}}, 2)
		if (i < 2) != (err == nil) || (i == 2 && !errors.Is(err, ErrQueueFull)) {
			t.Errorf("submit %d: %v", i, err)
		}
	}
	// Another lane has its own limit.
	if _, err := l.Submit(ctx, Record{ID: NewID(ForecastPrefix), Lane: LaneForecast, Class: ClassAny,
		Spec: worker.Spec{Forecast: &worker.Forecast{Dataset: "bike"}}}, 2); err != nil {
		t.Error(err)
	}
}

// QueueDepth counts the jobs waiting, right after their submit returns,
// and not the ones an agent has taken.
func TestQueueDepth(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{})
	ctx := ctxT(t, 10*time.Second)
	depth := func(want int) {
		t.Helper()
		if n, err := l.QueueDepth(ctx, LaneTrain, ClassAny); err != nil || n != want {
			t.Errorf("queue depth %d (%v), want %d", n, err, want)
		}
	}
	depth(0)
	submit(t, l)
	depth(1)
	submit(t, l)
	depth(2)
	j := take(t, l, "a", "1", 5*time.Second)
	depth(1)
	if err := j.Finish(ctx, StateCompleted, "", ""); err != nil {
		t.Fatal(err)
	}
	depth(1)
	take(t, l, "a", "1", 5*time.Second)
	depth(0)
}

// Prune forgets the oldest ended runs beyond KeepRuns, log included, and
// never an active one.
func TestPrune(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{KeepRuns: 1})
	ctx := ctxT(t, 10*time.Second)
	var ended []Record
	for range 3 {
		r := submit(t, l)
		c, err := l.Cancel(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		ended = append(ended, c)
		time.Sleep(2 * time.Millisecond) // distinct end times
	}
	active := submit(t, l)
	recs, _ := l.Records(ctx)
	l.Prune(ctx, recs)
	for i, r := range ended {
		_, _, err := l.Get(ctx, r.ID)
		kept := i == len(ended)-1
		if kept != (err == nil) {
			t.Errorf("run %d of 3 (ended): kept %v, err %v", i+1, kept, err)
		}
		if evs := history(t, l, r.ID); kept != (len(evs) == 1) {
			t.Errorf("run %d: %d messages left", i+1, len(evs))
		}
	}
	if _, _, err := l.Get(ctx, active.ID); err != nil {
		t.Errorf("the queued run was pruned: %v", err)
	}
}

// A run cancelled while its agent is dead, with no agent to take it again,
// is ended by Reap once the lease has run out.
func TestReapEndsACancelWhoseAgentIsDead(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{})
	rec := submit(t, l)
	take(t, l, "a", "1", 5*time.Second) // and a dies
	ctx := ctxT(t, 20*time.Second)
	if got, err := l.Cancel(ctx, rec.ID); err != nil || got.State != StateCancelling {
		t.Fatalf("%+v %v", got, err)
	}
	time.Sleep(2*testLease + 200*time.Millisecond)
	recs, _ := l.Records(ctx)
	l.Reap(ctx, recs)
	got, _, _ := l.Get(ctx, rec.ID)
	if got.State != StateCancelled || !strings.Contains(got.Error, "lost its agent a") {
		t.Fatalf("record %+v", got)
	}
	if evs := history(t, l, rec.ID); len(evs) != 1 || !evs[0].Terminal || evs[0].Attempt != 2 {
		t.Errorf("log %+v", evs)
	}
}
