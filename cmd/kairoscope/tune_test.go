package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kairoscope/kairoscope/schema"
)

func TestTunePrintsTrialsAndTable(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	out, _, err := run(t, "tune", "--data", "bike", "--trials", "2", "--folds", "2", "--epochs", "1", "--seed", "4",
		"--reports", dir, "--events", events)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tuning: 2 trials of 2 folds x 1 epochs", "[1/2] trial 0", "[2/2] trial 1", "trial  lr", "best: trial "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "] trial "); n != 2 {
		t.Errorf("%d trial lines, want 2:\n%s", n, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "tune_summary.json")); err != nil {
		t.Error(err)
	}
	f, err := os.Open(events)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var types []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if err := schema.Validate(sc.Bytes()); err != nil {
			t.Errorf("%s: %v", sc.Bytes(), err)
		}
		var m struct{ Type string }
		json.Unmarshal(sc.Bytes(), &m)
		types = append(types, m.Type)
	}
	if got := strings.Join(types, ","); got != "training_start,hpo_trial,hpo_trial,training_complete" {
		t.Errorf("events %s", got)
	}
}

func TestTuneBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("date,value\n2020-01-01,1\n2020-01-02,x\n"), 0o644)
	if _, _, err := run(t, "tune", "--data", bad, "--reports", dir); err == nil || !strings.Contains(err.Error(), "bad.csv:3") || exitCode(err) != 1 {
		t.Errorf("bad CSV: err = %v", err)
	}
	for _, args := range [][]string{{"tune"}, {"tune", "--data", "bike", "--trials", "0"}, {"tune", "--data", "bike", "--trials", "51"}, {"tune", "--data", "bike", "--folds", "0"}} {
		if _, _, err := run(t, args...); exitCode(err) != 2 {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
	if _, e, err := run(t, "tune", "--help"); !errors.Is(err, flag.ErrHelp) || !strings.Contains(e, "--trials") || !strings.Contains(e, "lower is better") {
		t.Errorf("--help: %v\n%s", err, e)
	}
}
