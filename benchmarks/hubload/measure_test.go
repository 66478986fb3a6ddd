package hubload

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kairoscope/kairoscope/schema"
)

// buildBins builds the hubload and kairoscope binaries into dir.
func buildBins(t *testing.T, dir string) (bin, worker string) {
	t.Helper()
	bin, worker = filepath.Join(dir, "hubload"), filepath.Join(dir, "kairoscope")
	for out, pkg := range map[string]string{bin: "../cmd/hubload", worker: "../../cmd/kairoscope"} {
		if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	return bin, worker
}

// The harness end to end with 20 clients and a short run: three processes,
// a real worker, every message to every client, and a Result with every
// field filled. No timing is asserted: speed is for make bench.
func TestMeasure(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and trains four times")
	}
	dir := t.TempDir()
	bin, worker := buildBins(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Measure(ctx, Options{Bin: bin, Worker: worker, Dir: filepath.Join(dir, "reports"), Clients: 20, Runs: 1,
		Request: schema.RunRequest{Folds: 2, Epochs: 3}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Messages < 8 || res.BytesPerClient <= 0 {
		t.Fatalf("%d messages of %d bytes a run; want a whole run's", res.Messages, res.BytesPerClient)
	}
	if res.Lost != 0 || res.OutOfOrder != 0 || res.Deliveries != int64(20*res.Messages) || res.Latency.N != res.Deliveries {
		t.Errorf("deliveries %d (latencies %d), lost %d, out of order %d; want 20 × %d, none lost",
			res.Deliveries, res.Latency.N, res.Lost, res.OutOfOrder, res.Messages)
	}
	var types []string
	n := 0
	for _, tl := range res.ByType {
		types = append(types, tl.Type)
		n += tl.Messages
	}
	for _, want := range []string{schema.TypeTrainingStart, schema.TypeEpochMetrics, schema.TypePredictionDelta, schema.TypeTrainingComplete} {
		if !slices.Contains(types, want) {
			t.Errorf("no %s among the types %q", want, types)
		}
	}
	if n != res.Messages {
		t.Errorf("the types count %d messages; want %d", n, res.Messages)
	}
	if len(res.AloneRuns) != 1 || len(res.LoadedRuns) != 1 || res.AloneS <= 0 || res.LoadedS <= 0 || res.Slowdown <= 0 {
		t.Errorf("run times: alone %v, loaded %v, slowdown %v", res.AloneRuns, res.LoadedRuns, res.Slowdown)
	}
	if res.ServerCPULoadedS <= 0 || res.ClientsCPUS <= 0 || res.DialS <= 0 {
		t.Errorf("CPU: server %v s, clients %v s; dial %v s", res.ServerCPULoadedS, res.ClientsCPUS, res.DialS)
	}
	if latency, slowdown, memory := res.Met(); latency || slowdown || memory {
		t.Error("targets met with 20 clients: they are for 1,000")
	}
}
