package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// A tune sends nothing while its trials train: RunWorker writes keepalive
// lines meanwhile, and every other line is one message of the schema.
func TestRunWorkerKeepsATuneAlive(t *testing.T) {
	path, hash := versionFile(t, 420)
	spec := worker.Spec{Run: &schema.RunRequest{Dataset: "mine", Kind: schema.RunKindTune, Trials: 2, Folds: 2, Epochs: 3},
		Reports: t.TempDir(), Data: &worker.Data{Name: "mine", Hash: hash, Path: path}}
	var out bytes.Buffer
	if err := RunWorker(context.Background(), spec, Runtime{KeepAlive: time.Millisecond}, &out); err != nil {
		t.Fatal(err)
	}
	var keepalives, msgs int
	for _, line := range bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			keepalives++
			continue
		}
		msgs++
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil || schema.Validate(line) != nil {
			t.Errorf("line %q is not a schema message", line)
		}
	}
	if keepalives == 0 || msgs != 4 { // training_start, 2 hpo_trial, training_complete
		t.Errorf("%d keepalives and %d messages:\n%s", keepalives, msgs, out.String())
	}
}
