package loadgen

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestLoad runs a small load of the real server, bounded: 100 clients
// parsing every frame during a real run, 3 slow ones, 20 /ws/predict
// clients over 3 forecasts, every check of Result.Check. make loadtest
// runs the figures of RELIABILITY.md (1,000 and 5,000 clients).
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and loads the server: not in -short")
	}
	bin := filepath.Join(t.TempDir(), "kairoscope")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// OpenBLAS when the machine has it (make test installs it): training
	// 5 times faster keeps the test short.
	if _, err := exec.CommandContext(ctx, "go", "build", "-tags", "openblas", "-o", bin, "../../cmd/kairoscope").CombinedOutput(); err != nil {
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../../cmd/kairoscope").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	// A short run of the long transit series: its prediction_deltas make
	// 14 MB, far more than a stalled client's socket holds (4 MiB at most
	// here), and the send queue of 32 (256 by default) overflows.
	res, err := Run(ctx, Config{Kairoscope: bin, ServeArgs: []string{"--send-queue", "32"}, Clients: 100, Slow: 3, Predict: 20, Forecasts: 3,
		Run: `{"dataset":"transit","folds":2,"epochs":30,"patience":0}`, Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d clients, %d messages each of %d: p50 %.1f ms, p99 %.1f ms; %.0f B a connection idle; %d slow closed 4008; %d forecasts for %d clients",
		res.Clients, res.PerClient, res.Messages, res.LatencyP50Ms, res.LatencyP99Ms, res.BytesPerConnIdle, res.SlowClosed, res.ForecastsRun, res.Predict)
	if err := res.Check(); err != nil {
		t.Error(err)
	}
	if res.Complete != 100 || res.PerClient < 10 || res.ForecastsRun > 3 {
		t.Errorf("result %+v", res)
	}
}

// A load beyond MaxClients, or without clients, is refused before
// anything starts.
func TestBounds(t *testing.T) {
	for _, cfg := range []Config{{Clients: 0}, {Clients: MaxClients, Slow: 1}, {Clients: 1, Predict: -1}} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

func TestScanFrame(t *testing.T) {
	f, ok := scanFrame([]byte(`{"type":"epoch_metrics","epoch":1,"run_id":"run_0123456789ab","seq":42,"attempt":1}`))
	if !ok || f.Type != "epoch_metrics" || f.RunID != "run_0123456789ab" || f.Seq != 42 {
		t.Errorf("%+v %v", f, ok)
	}
	for _, bad := range []string{`{"type":"x","run_id":"r","seq":1`, `{"type":"x"}`, `[1]`, `{"run_id":"r","seq":0}`} {
		if _, ok := scanFrame([]byte(bad)); ok {
			t.Errorf("%s accepted", bad)
		}
	}
}
