package ws

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kairoscope/kairoscope/agent"
	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// newAgentServer is newTestServer with the agent's Config changed by amod.
func newAgentServer(t *testing.T, jobs agent.Jobs, mod func(*Config), amod func(*agent.Config)) *testServer {
	t.Helper()
	st := newStack(t, t.TempDir())
	ts := startAgentOn(t, st, jobs, mod, amod)
	t.Cleanup(st.close)
	return ts
}

// untilCancelled starts, then waits for its context: a job that would
// hold its slot for days.
func untilCancelled(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
	if spec.Forecast != nil {
		emitJSON(emit, schema.PredictMessage{Status: schema.StatusMessage, Message: "Chargement des données..."})
	} else {
		emitJSON(emit, schema.TrainingStart{Type: schema.TypeTrainingStart, TotalFolds: 20, TotalEpochs: 1000})
	}
	<-ctx.Done()
	return ctx.Err()
}

// A run past the agent's wall-clock limit is stopped and fails with a
// training_error naming the limit; the slot is free for the next run.
func TestRunTimeLimit(t *testing.T) {
	var calls atomic.Int32
	jobs := &fakeJobs{run: func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
		if calls.Add(1) == 1 {
			return untilCancelled(ctx, spec, emit)
		}
		return trainScript(ctx, spec, emit)
	}}
	ts := newAgentServer(t, jobs, nil, func(c *agent.Config) { c.MaxRunTime = 500 * time.Millisecond })
	c := ts.dial(t, "/ws")
	_, info := postRun(t, ts, `{}`)
	msgs := readUntil(t, c, isType(schema.TypeTrainingError))
	if e := fmt.Sprint(msgs[len(msgs)-1]["error"]); !strings.Contains(e, "wall-clock limit") || !strings.Contains(e, "--max-run-time") {
		t.Errorf("error %q", e)
	}
	rec := waitState(t, ts, info["run_id"].(string), runlog.StateFailed)
	if !strings.Contains(rec.Error, "--max-run-time") {
		t.Errorf("record error %q", rec.Error)
	}
	postRun(t, ts, `{}`)
	readUntil(t, c, isType(schema.TypeTrainingComplete))
}

// A forecast past its limit ends with an error message on /ws/predict.
func TestForecastTimeLimit(t *testing.T) {
	ts := newAgentServer(t, &fakeJobs{run: untilCancelled}, nil, func(c *agent.Config) { c.MaxForecastTime = 500 * time.Millisecond })
	msgs := readUntil(t, ts.dial(t, "/ws/predict"), func(m map[string]any) bool { return m["status"] == schema.StatusError })
	if e := fmt.Sprint(msgs[len(msgs)-1]["message"]); !strings.Contains(e, "--max-forecast-time") {
		t.Errorf("message %q", e)
	}
}

// A worker flooding its stdout is stopped at the job's byte budget and the
// run fails saying so; the server serves on.
func TestJobBytesLimit(t *testing.T) {
	ts := newAgentServer(t, &fakeJobs{run: func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
		emitJSON(emit, schema.TrainingStart{Type: schema.TypeTrainingStart, TotalFolds: 1, TotalEpochs: 1})
		for e := 0; ctx.Err() == nil; e++ {
			emitJSON(emit, schema.EpochMetrics{Type: schema.TypeEpochMetrics, Epoch: e})
		}
		return ctx.Err()
	}}, nil, func(c *agent.Config) { c.MaxJobBytes = 64 << 10 })
	c := ts.dial(t, "/ws")
	_, info := postRun(t, ts, `{}`)
	msgs := readUntil(t, c, isType(schema.TypeTrainingError))
	if e := fmt.Sprint(msgs[len(msgs)-1]["error"]); !strings.Contains(e, "--max-job-bytes") {
		t.Errorf("error %q", e)
	}
	if len(msgs) > 2000 {
		t.Errorf("%d messages got through a 64 KiB budget", len(msgs))
	}
	waitState(t, ts, info["run_id"].(string), runlog.StateFailed)
	if resp, err := http.Get(ts.URL + "/"); err != nil || resp.StatusCode != 200 {
		t.Errorf("server after the flood: %v %v", resp, err)
	}
}
