package hubload

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
	"github.com/kairoscope/kairoscope/ws/hub"
)

// A feed runs one training job in a worker process, as an agent does, and
// hands its messages on with no log in between: the in-memory path's
// server appends them to a hub. Each message is enveloped as the log envelopes it (runlog.Envelope:
// run_id, seq, attempt 1), so that every path's clients read the same
// fields.
type feed struct {
	runner  *worker.Runner
	reports string // runs write their reports under reports/<run_id>
}

func newFeed(workerPath, reports string, log zerolog.Logger) *feed {
	return &feed{reports: reports, runner: &worker.Runner{
		CPU: worker.Command{Device: worker.DeviceCPU, Path: workerPath, Args: []string{"worker"}}, Log: log}}
}

// run trains req as run id, with a prediction_delta after every epoch when
// deltas is set (what ws.Server asks of a training job). emit gets each
// message in order, on the worker's reading goroutine; Published.At is the
// time just before emit was called.
func (f *feed) run(ctx context.Context, id string, req schema.RunRequest, deltas bool, emit func(hub.Message)) (RunInfo, Published, error) {
	req.OnOOM = cmp.Or(req.OnOOM, schema.OnOOMFail)
	spec := worker.Spec{Run: &req, Reports: filepath.Join(f.reports, id), PredictionDeltas: deltas}
	var pub Published
	var last string
	start := time.Now()
	err := f.runner.Run(ctx, spec, worker.DeviceCPU, func(msg []byte) {
		var head struct {
			Type string `json:"type"`
		}
		json.Unmarshal(msg, &head) // the worker's messages are JSON objects; a bad one gets type ""
		seq := uint64(len(pub.At) + 1)
		m := hub.Message{Stream: id, Seq: seq, Payload: runlog.Envelope(msg, id, seq, 1),
			Terminal: head.Type == schema.TypeTrainingComplete || head.Type == schema.TypeTrainingError}
		if m.Payload == nil {
			return
		}
		last = head.Type
		pub.Types = append(pub.Types, head.Type)
		pub.At = append(pub.At, time.Now().UnixNano())
		emit(m)
	})
	info := RunInfo{ID: id, TrainS: time.Since(start).Seconds()}
	if err == nil && last != schema.TypeTrainingComplete {
		err = fmt.Errorf("run %s ended with %q, not %s", id, last, schema.TypeTrainingComplete)
	}
	return info, pub, err
}
