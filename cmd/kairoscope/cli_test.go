package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kairoscope/kairoscope/schema"
)

const bike = "../../datasets/bike.csv" // the embedded dataset's file

func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	err = Run(context.Background(), args, strings.NewReader(""), &o, &e)
	return o.String(), e.String(), err
}

func TestTrainEventsAreSchemaJSONLines(t *testing.T) {
	dir := t.TempDir()
	out, errOut, err := run(t, "train", "--data", bike, "--reports", dir, "--folds", "2", "--epochs", "2", "--events", "-", "--prediction-deltas")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var types []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stdout line is not JSON: %q", sc.Text())
		}
		if err := schema.Validate(sc.Bytes()); err != nil {
			t.Errorf("%s: %v", m["type"], err)
		}
		if m["type"] == schema.TypePredictionDelta {
			continue
		}
		types = append(types, m["type"].(string))
		if m["type"] == schema.TypeEpochMetrics {
			for _, k := range []string{"fold_id", "epoch", "train_loss", "train_nll", "train_bce", "train_brier", "val_loss", "val_nll",
				"val_bce", "val_brier", "val_auc", "DirAcc", "ECE", "MZ_intercept", "MZ_slope", "MZ_F_p", "PIT_KS_p",
				"conformal_coverage", "conformal_width", "elapsed_seconds"} {
				if _, ok := m[k]; !ok {
					t.Errorf("epoch_metrics lacks %s", k)
				}
			}
		}
	}
	want := "dataset_ready training_start epoch_metrics epoch_metrics fold_complete epoch_metrics epoch_metrics fold_complete training_complete"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("types:\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(errOut, "fold 2/2 epoch 2/2") {
		t.Errorf("no plain progress lines on stderr:\n%s", errOut)
	}
	preds, _ := filepath.Glob(filepath.Join(dir, "predictions", "predictions_fold_*_*.csv"))
	if len(preds) != 2 {
		t.Errorf("predictions files: %v", preds)
	}
}

func TestBadInputNamesFileAndLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("date,value\n2020-01-01,1\n2020-01-02,x\n"), 0o644)
	reports := filepath.Join(dir, "reports")
	_, _, err := run(t, "train", "--data", bad, "--reports", reports)
	if err == nil || !strings.Contains(err.Error(), "bad.csv:3") || exitCode(err) != 1 {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(reports); !os.IsNotExist(err) {
		t.Error("a failed run created the reports folder")
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"train"}, {"train", "--data", bike, "--folds", "x"}, {"train", "--data", bike, "--hidden", "64,-1"}} {
		if _, _, err := run(t, args...); exitCode(err) != 2 {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
	if _, e, err := run(t, "train", "--help"); !errors.Is(err, flag.ErrHelp) || !strings.Contains(e, "--reports") {
		t.Errorf("--help: %v\n%s", err, e)
	}
}

func TestPredictPrintsSeedPayload(t *testing.T) {
	out, errOut, err := run(t, "predict", "--data", bike, "--horizon", "7", "--ensemble", "1", "--epochs", "3")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var items []map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber() // to see integers as written
	if err := dec.Decode(&items); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(items) != 7 || items[0]["date"] != "2013-01-01" {
		t.Fatalf("items %v", items)
	}
	for _, it := range items {
		for _, k := range []string{"predicted_affluence", "conf_low", "conf_high"} {
			v, ok := it[k].(json.Number)
			if n, err := v.Int64(); !ok || err != nil || n < 0 {
				t.Errorf("%s = %v, want a non-negative integer", k, it[k])
			}
		}
		if c := it["confidence_score"]; c != "High" && c != "Medium" && c != "Low" {
			t.Errorf("confidence_score %v", c)
		}
	}
}
