package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kairoscope/kairoscope/schema"
)

// A reports folder that cannot be written fails a run, and a tune, before
// any training: their only messages are the training_error, which names
// the folder. (As root no mode bit stops a write: a file where the folder
// should be does.)
func TestUnwritableReportsFailAtOnce(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "reports")
	for name, run := range map[string]func(emit Emit) error{
		"train": func(emit Emit) error {
			_, err := Train(context.Background(), load(t, "bike.csv"), quickConfig(dir), emit)
			return err
		},
		"tune": func(emit Emit) error {
			_, err := Tune(context.Background(), load(t, "bike.csv"), quickConfig(dir), TuneOptions{Trials: 2}, emit)
			return err
		},
	} {
		var msgs []any
		err := run(func(m any) { msgs = append(msgs, m) })
		if err == nil || !strings.Contains(err.Error(), "reports folder "+dir+" cannot be written") {
			t.Fatalf("%s: err = %v", name, err)
		}
		if len(msgs) != 1 {
			t.Fatalf("%s: %d messages before the error: %v", name, len(msgs), msgs)
		}
		if e, ok := msgs[0].(*schema.TrainingError); !ok || e.Error != err.Error() {
			t.Errorf("%s: message %#v", name, msgs[0])
		}
	}
}
