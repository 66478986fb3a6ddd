package ws

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// completeThenLinger ends the run, then lingers as a worker does between
// its last message and its exit: the window where a DELETE or a SIGTERM
// used to add a second terminal message.
func completeThenLinger(done chan<- struct{}) func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
	return func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
		emitJSON(emit, schema.TrainingStart{Type: schema.TypeTrainingStart, UseCV: true, TotalFolds: 1, TotalEpochs: 1})
		emitJSON(emit, schema.TrainingComplete{Type: schema.TypeTrainingComplete, FoldsCompleted: 1, SummaryPath: spec.Reports + "/summary.json"})
		if done != nil {
			close(done)
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
		return nil
	}
}

// terminals counts the terminal messages of run id's whole log and lists
// its types; the replay must end with a normal close.
func terminals(t *testing.T, ts *testServer, id string) (n int, types []string) {
	t.Helper()
	c := ts.dial(t, "/ws?run="+id)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Errorf("replay of %s ended with %v, want a normal close", id, err)
			}
			return n, types
		}
		var m struct{ Type string }
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		types = append(types, m.Type)
		if m.Type == schema.TypeTrainingComplete || m.Type == schema.TypeTrainingError {
			n++
		}
	}
}

// A DELETE just after training_complete, while the worker still runs,
// neither adds a training_error nor marks the run cancelled; once ended,
// DELETE is 409.
func TestCancelAfterComplete(t *testing.T) {
	done := make(chan struct{})
	ts := newTestServer(t, &fakeJobs{run: completeThenLinger(done)}, nil)
	_, info := postRun(t, ts, `{}`)
	id := info["run_id"].(string)
	<-done
	req, _ := http.NewRequest(http.MethodDelete, ts.URL+"/api/runs/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusConflict {
		t.Errorf("DELETE after training_complete: %s", resp.Status)
	}
	waitState(t, ts, id, runlog.StateCompleted)
	if n, types := terminals(t, ts, id); n != 1 {
		t.Errorf("%d terminal messages: %v", n, types)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("DELETE of a completed run: %s, want 409", resp.Status)
	}
}

// The agent stopping (SIGTERM) just after training_complete leaves the run
// completed with one terminal message, not handed back or failed.
func TestShutdownAfterComplete(t *testing.T) {
	done := make(chan struct{})
	st := newStack(t, t.TempDir())
	defer st.close()
	ts := startOn(t, st, &fakeJobs{run: completeThenLinger(done)}, nil)
	_, info := postRun(t, ts, `{}`)
	id := info["run_id"].(string)
	<-done
	ts.stop(t)
	rec, _, err := st.l.Get(context.Background(), id)
	if err != nil || rec.State != runlog.StateCompleted || rec.Attempt != 1 {
		t.Fatalf("record after the shutdown: %+v %v", rec, err)
	}
	ts2 := startOn(t, st, nil, nil)
	if n, types := terminals(t, ts2, id); n != 1 || types[len(types)-1] != schema.TypeTrainingComplete {
		t.Errorf("log after the shutdown: %v", types)
	}
}

// Fifty runs cancelled while queued end at once: none is replayed to a
// client joining later, all are listed cancelled, and past KeepRuns the
// oldest are pruned.
func TestCancelledWhileQueued(t *testing.T) {
	st := newStack(t, t.TempDir())
	defer st.close()
	ts := startOn(t, st, nil, func(c *Config) { c.RunBurst = 100; c.MaxQueuedRuns = 100 }) // no agent: runs stay queued
	for range 50 {
		_, info := postRun(t, ts, `{}`)
		req, _ := http.NewRequest(http.MethodDelete, ts.URL+"/api/runs/"+info["run_id"].(string), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("DELETE: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	waitFor(t, "50 cancelled runs listed", func() bool {
		n := 0
		for _, r := range listOf(t, ts) {
			if r["state"] == runlog.StateCancelled {
				n++
			}
		}
		return n == 50
	})
	c := ts.dial(t, "/ws")
	c.WriteMessage(websocket.TextMessage, []byte("ping"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil || string(b) != `{"type":"pong"}` {
		t.Errorf("a new client's first frame %q (%v): want the pong, no replay of cancelled runs", b, err)
	}
	// Pruning keeps the newest KeepRuns ended runs.
	recs, err := st.l.Records(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	small := st.l.Config()
	small.KeepRuns = 10
	pl, err := runlog.Open(context.Background(), st.nc, small, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	pl.Prune(context.Background(), recs)
	left, _ := st.l.Records(context.Background())
	if len(left) != 10 {
		t.Errorf("%d runs left after pruning to 10", len(left))
	}
}
