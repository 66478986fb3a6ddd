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
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// Feed is the source of messages of the paths without a log, the
// in-memory hub and the FastAPI peer: `hubload feed -worker PATH -reports
// DIR -request JSON -published FILE`. It runs one training job in a worker
// process through worker.Runner, as an agent does, and writes each of its
// messages, enveloped as the log envelopes them (runlog.Envelope: run_id,
// seq, attempt 1), as one line to stdout, flushed at once; then the run's
// FeedResult to FILE. Published.At is when each line was handed to the
// pipe, so a message that waits there while the server is busy counts in
// its delivery latency, whichever server reads it: both paths read the
// same feed in a process of their own.
//
// -deltas asks for a prediction_delta after every epoch, as ws.Server asks
// of a training job (the in-memory path; its hub sends them to no plain
// client); without it the worker emits none, as the seed's stack sends
// none (the FastAPI peer).
func Feed(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hubload feed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	workerPath := fs.String("worker", "", "the kairoscope binary whose worker command trains (required)")
	reports := fs.String("reports", "", "folder for the run's reports (required)")
	request := fs.String("request", "{}", "the run request, JSON")
	published := fs.String("published", "", "write the run's FeedResult here (required)")
	id := fs.String("run-id", "", "the run's ID (default: a new one)")
	deltas := fs.Bool("deltas", false, "a prediction_delta after every epoch")
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
	req.OnOOM = cmp.Or(req.OnOOM, schema.OnOOMFail)
	runID := cmp.Or(*id, runlog.NewID(runlog.RunPrefix))
	log := zerolog.New(stderr).With().Timestamp().Logger().Level(zerolog.InfoLevel)
	runner := &worker.Runner{CPU: worker.Command{Device: worker.DeviceCPU, Path: *workerPath, Args: []string{"worker"}}, Log: log}
	spec := worker.Spec{Run: &req, Reports: filepath.Join(*reports, runID), PredictionDeltas: *deltas}

	out := bufio.NewWriter(stdout)
	var werr error
	var last string
	res := FeedResult{Run: RunInfo{ID: runID}}
	start := time.Now()
	err := runner.Run(ctx, spec, worker.DeviceCPU, func(msg []byte) {
		seq := uint64(len(res.Published.At) + 1)
		env := runlog.Envelope(msg, runID, seq, 1)
		if env == nil || werr != nil {
			return
		}
		last, _ = messageType(msg)
		res.Published.Types = append(res.Published.Types, last)
		res.Published.At = append(res.Published.At, time.Now().UnixNano())
		out.Write(env)
		out.WriteByte('\n')
		werr = out.Flush()
	})
	res.Run.TrainS = time.Since(start).Seconds()
	if err == nil && last != schema.TypeTrainingComplete {
		err = fmt.Errorf("run %s ended with %q, not %s", runID, last, schema.TypeTrainingComplete)
	}
	if err = cmp.Or(err, werr); err != nil {
		res.Error = err.Error()
	}
	b, _ := json.Marshal(res)
	if werr := os.WriteFile(*published, b, 0o644); werr != nil {
		return cmp.Or(err, werr)
	}
	return err
}

// FeedResult is what `hubload feed` writes to its -published file once
// the run has ended.
type FeedResult struct {
	Run       RunInfo   `json:"run"`
	Published Published `json:"published"`
	Error     string    `json:"error,omitempty"`
}

// messageType reads a message's type, and whether it ends its run
// (training_complete or training_error). A message that is not a JSON
// object has type "".
func messageType(msg []byte) (typ string, terminal bool) {
	var head struct {
		Type string `json:"type"`
	}
	json.Unmarshal(msg, &head)
	return head.Type, head.Type == schema.TypeTrainingComplete || head.Type == schema.TypeTrainingError
}

// runFeed runs `bin feed` for run id and hands each line it writes to
// emit, in order; the line's bytes are valid during the call only.
func runFeed(ctx context.Context, bin, workerPath, reports, id string, req schema.RunRequest, deltas bool, emit func(line []byte)) (FeedResult, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return FeedResult{}, err
	}
	published := filepath.Join(reports, id+".feed.json")
	cmd := exec.CommandContext(ctx, bin, "feed", "-worker", workerPath, "-reports", reports, "-request", string(body),
		"-published", published, "-run-id", id, "-deltas="+strconv.FormatBool(deltas))
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return FeedResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return FeedResult{}, fmt.Errorf("hubload: starting the feed: %w", err)
	}
	in := bufio.NewScanner(out)
	in.Buffer(make([]byte, 64<<10), maxMessage)
	for in.Scan() {
		emit(in.Bytes())
	}
	scanErr := in.Err()
	if scanErr != nil {
		io.Copy(io.Discard, out) // let the feed finish
	}
	waitErr := cmd.Wait()
	var res FeedResult
	b, err := os.ReadFile(published)
	if err == nil {
		err = json.Unmarshal(b, &res)
	}
	switch {
	case err != nil:
		return res, fmt.Errorf("hubload: the feed (%v) left no result: %w", waitErr, err)
	case res.Error != "":
		return res, fmt.Errorf("hubload: the feed: %s", res.Error)
	}
	return res, cmp.Or(scanErr, waitErr)
}
