package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kairoscope/kairoscope/datasets"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// versionFile writes the first rows of the embedded bike data to a file,
// as the server's pinned copy, and returns its path and hash.
func versionFile(t *testing.T, rows int) (string, string) {
	t.Helper()
	b, err := os.ReadFile("../datasets/bike.csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	b = bytes.Join(lines[:rows+1], nil)
	sum := sha256.Sum256(b)
	hash := hex.EncodeToString(sum[:])
	path := filepath.Join(t.TempDir(), hash+".csv")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, hash
}

// A job reads the file its spec names, records that version in
// training_start and summary.json, and refuses bytes of another version.
func TestRunJobTrainsOnTheVersionGiven(t *testing.T) {
	path, hash := versionFile(t, 420)
	dir := t.TempDir()
	var msgs []any
	spec := worker.Spec{Run: &schema.RunRequest{Dataset: "mine", Folds: 2, Epochs: 1}, Reports: dir,
		Data: &worker.Data{Name: "mine", Hash: hash, Path: path}}
	if err := RunJob(context.Background(), spec, Runtime{}, func(m any) { msgs = append(msgs, m) }); err != nil {
		t.Fatal(err)
	}
	validated(t, msgs)
	var start *schema.TrainingStart
	for _, m := range msgs {
		if s, ok := m.(*schema.TrainingStart); ok {
			start = s
		}
	}
	if start == nil || start.Dataset != "mine.csv" || start.DatasetHash != hash || start.DatasetRows != 420 {
		t.Fatalf("training_start %+v", start)
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum Summary
	if json.Unmarshal(b, &sum); sum.DatasetHash != hash || sum.Rows != 420 || sum.Dataset != "mine.csv" {
		t.Errorf("summary.json: dataset %q, hash %q, rows %d", sum.Dataset, sum.DatasetHash, sum.Rows)
	}

	// The file no longer holds that version: the job refuses to train.
	os.WriteFile(path, append(must(os.ReadFile(path)), "2012-02-25,1\n"...), 0o644)
	msgs = nil
	err = RunJob(context.Background(), spec, Runtime{}, func(m any) { msgs = append(msgs, m) })
	if !errors.Is(err, datasets.ErrHashMismatch) || len(msgs) != 1 {
		t.Fatalf("%v %v", err, msgs)
	}
	if te, ok := msgs[0].(*schema.TrainingError); !ok || !strings.Contains(te.Error, "the job was started on "+hash) {
		t.Errorf("%#v", msgs[0])
	}
}

// A forecast records the version it forecast from in its output, and
// refuses another version with the pipeline's error.
func TestRunJobForecastsOnTheVersionGiven(t *testing.T) {
	path, hash := versionFile(t, 400)
	var msgs []any
	spec := worker.Spec{Forecast: &worker.Forecast{Dataset: "mine", Horizon: 3, Ensemble: 1}, Data: &worker.Data{Name: "mine", Hash: hash, Path: path}}
	if err := RunJob(context.Background(), spec, Runtime{}, func(m any) { msgs = append(msgs, m) }); err != nil {
		t.Fatal(err)
	}
	validated(t, msgs)
	out, ok := msgs[len(msgs)-1].(*schema.PredictOutput)
	if !ok || out.Dataset != "mine.csv" || out.DatasetHash != hash || out.DatasetRows != 400 || len(out.Payload) != 3 || out.Payload[0].Date != "2012-02-05" {
		t.Fatalf("output %+v", msgs[len(msgs)-1])
	}
	spec.Data.Hash = strings.Repeat("0", 64)
	msgs = nil
	if err := RunJob(context.Background(), spec, Runtime{}, func(m any) { msgs = append(msgs, m) }); !errors.Is(err, datasets.ErrHashMismatch) {
		t.Fatal(err)
	}
	if e, ok := msgs[len(msgs)-1].(*schema.PredictError); !ok || !strings.Contains(e.Message, "start the job again") {
		t.Errorf("%#v", msgs[len(msgs)-1])
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
