package report

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// A write that fails half-way leaves the previous file whole and no
// temporary file behind.
func TestWriteFileIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "summary.json")
	if err := WriteJSON(path, map[string]int{"v": 1}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	err := WriteFile(path, func(f *os.File) error {
		f.WriteString(`{"v": 2, "trunc`)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != "{\n  \"v\": 1\n}\n" {
		t.Errorf("old file changed: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestPredictionsRoundTripExactly(t *testing.T) {
	rows := []Prediction{
		{Timestamp: time.Date(2012, 7, 1, 0, 0, 0, 0, time.UTC), Horizon: 1, YTrue: 0.1 + 0.2, Mu: -1e-17, Sigma: math.Pi,
			PUpRaw: 1.0 / 3, PUpCal: 0.5, ConfLow: math.Inf(-1), ConfHigh: math.Inf(1), ConformalP: 0.01, PITZ: -2.5, Split: SplitCalib},
		{Timestamp: time.Date(2012, 7, 2, 0, 0, 0, 0, time.UTC), Horizon: 1, YTrue: 3, Split: SplitScore},
	}
	path := filepath.Join(t.TempDir(), "predictions", PredictionsName(0, time.Date(2023, 1, 1, 12, 0, 0, 0, time.UTC)))
	if filepath.Base(path) != "predictions_fold_0_20230101_120000.csv" {
		t.Errorf("name %s", filepath.Base(path))
	}
	if err := WritePredictions(path, rows); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPredictions(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rows) {
		t.Errorf("read back\n%+v\nwrote\n%+v", got, rows)
	}
}
