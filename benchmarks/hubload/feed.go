package hubload

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
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
// server appends them to a hub, `hubload feed` writes them to the FastAPI
// peer. Each message is enveloped as the log envelopes it (runlog.Envelope:
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

// FeedResult is what `hubload feed` writes to its -published file once
// the run has ended.
type FeedResult struct {
	Run       RunInfo   `json:"run"`
	Published Published `json:"published"`
	Error     string    `json:"error,omitempty"`
}

// Feed is the FastAPI peer's source of messages: `hubload feed -worker
// PATH -reports DIR -request JSON -published FILE`. It trains the request
// in a worker process (without prediction_delta: the seed's stack sends
// none) and writes each enveloped message as one line to stdout, flushed
// at once, then the run's FeedResult to FILE. Published.At is when each
// line was handed to the pipe, so the time a message waits there for the
// peer counts in its delivery latency.
func Feed(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hubload feed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	workerPath := fs.String("worker", "", "the kairoscope binary whose worker command trains (required)")
	reports := fs.String("reports", "", "folder for the run's reports (required)")
	request := fs.String("request", "{}", "the run request, JSON")
	published := fs.String("published", "", "write the run's FeedResult here (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *workerPath == "" || *reports == "" || *published == "" {
		return errors.New("hubload feed: -worker, -reports and -published are required")
	}
	var req schema.RunRequest
	if err := json.Unmarshal([]byte(*request), &req); err != nil {
		return fmt.Errorf("hubload feed: -request: %w", err)
	}
	log := zerolog.New(stderr).With().Timestamp().Logger().Level(zerolog.InfoLevel)
	out := bufio.NewWriter(stdout)
	var werr error
	info, pub, err := newFeed(*workerPath, *reports, log).run(ctx, runlog.NewID(runlog.RunPrefix), req, false, func(m hub.Message) {
		if werr == nil {
			out.Write(m.Payload)
			out.WriteByte('\n')
			werr = out.Flush()
		}
	})
	err = cmp.Or(err, werr)
	res := FeedResult{Run: info, Published: pub}
	if err != nil {
		res.Error = err.Error()
	}
	b, _ := json.Marshal(res)
	if werr := os.WriteFile(*published, b, 0o644); werr != nil {
		return cmp.Or(err, werr)
	}
	return err
}
