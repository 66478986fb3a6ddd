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

// The harness end to end with 10 clients and a short run, on every path
// (the FastAPI peer where Debian's python3-fastapi and python3-uvicorn are
// installed, else skipped with its reason): processes of their own, a real
// worker, every message a plain client gets to every client, none of the
// others, and a Result with every field filled. No timing is asserted:
// speed is for make bench.
func TestMeasure(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and trains several times")
	}
	dir := t.TempDir()
	bin, worker := buildBins(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const clients = 10
	res, err := Measure(ctx, Options{Bin: bin, Worker: worker, Dir: filepath.Join(dir, "runs"), Clients: clients, Runs: 1, NoWarmup: true,
		Peer: "../peers/fastapi_hub.py", Request: schema.RunRequest{Folds: 2, Epochs: 3}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{PathLog, PathMemory, PathFastAPI}
	if len(res.Skipped) > 0 {
		if len(res.Skipped) != 1 || res.Skipped[0].Path != PathFastAPI || res.Skipped[0].Reason == "" {
			t.Fatalf("skipped %+v; want at most the FastAPI peer, with a reason", res.Skipped)
		}
		t.Logf("skipped %s: %s", PathFastAPI, res.Skipped[0].Reason)
		want = want[:2]
	}
	var got []string
	for _, p := range res.Paths {
		got = append(got, p.Path)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paths %q; want %q", got, want)
	}
	for _, p := range res.Paths {
		t.Logf("%s (%s): %d of %d messages a client, %d bytes, p99 %.1f ms, slowdown %.2f, %d B RSS a connection",
			p.Path, p.Stack, p.MessagesPerClient, p.Messages, p.BytesPerClient, p.P99, p.Slowdown, p.ConnRSSBytes)
		if p.MessagesPerClient < 8 || p.BytesPerClient <= 0 || p.Stack == "" {
			t.Errorf("%s: %d messages of %d bytes a client (%q); want a whole run's", p.Path, p.MessagesPerClient, p.BytesPerClient, p.Stack)
		}
		if p.Lost != 0 || p.Unexpected != 0 || p.OutOfOrder != 0 || p.Others != 0 || p.Deliveries != int64(clients*p.MessagesPerClient) || p.Latency.N != p.Deliveries {
			t.Errorf("%s: deliveries %d (latencies %d), lost %d, unexpected %d, out of order %d, others %d; want %d × %d, none lost",
				p.Path, p.Deliveries, p.Latency.N, p.Lost, p.Unexpected, p.OutOfOrder, p.Others, clients, p.MessagesPerClient)
		}
		var types []string
		n := 0
		for _, tl := range p.ByType {
			types = append(types, tl.Type)
			n += tl.Messages
		}
		for _, want := range []string{schema.TypeTrainingStart, schema.TypeEpochMetrics, schema.TypeFoldComplete, schema.TypeTrainingComplete} {
			if !slices.Contains(types, want) {
				t.Errorf("%s: no %s among the types %q", p.Path, want, types)
			}
		}
		if slices.Contains(types, schema.TypePredictionDelta) {
			t.Errorf("%s: a plain client got prediction_delta", p.Path)
		}
		if n != p.MessagesPerClient {
			t.Errorf("%s: the types count %d messages; want %d", p.Path, n, p.MessagesPerClient)
		}
		if len(p.AloneRuns) != 1 || len(p.LoadedRuns) != 1 || p.AloneS <= 0 || p.LoadedS <= 0 || p.Slowdown <= 0 {
			t.Errorf("%s: run times: alone %v, loaded %v, slowdown %v", p.Path, p.AloneRuns, p.LoadedRuns, p.Slowdown)
		}
		if p.ServerCPULoadedS <= 0 || p.ClientsCPUS <= 0 || p.DialS <= 0 {
			t.Errorf("%s: CPU: server %v s, clients %v s; dial %v s", p.Path, p.ServerCPULoadedS, p.ClientsCPUS, p.DialS)
		}
		if (p.Path == PathFastAPI) != (p.ConnBytes == -1) {
			t.Errorf("%s: heap and stacks a connection %d; want -1 for the peer only", p.Path, p.ConnBytes)
		}
		if latency, slowdown, memory := p.Met(res.Clients); latency || slowdown || memory {
			t.Errorf("%s: targets met with %d clients: they are for 1,000", p.Path, clients)
		}
	}
	if res.Pinning.Pinned() == (res.Pinning.Note != "") {
		t.Errorf("pinning %+v: want CPU lists or a note saying why not", res.Pinning)
	}
}

// Without its packages the FastAPI peer is skipped, with the reason, and
// nothing fails.
func TestFastAPIPeerSkipped(t *testing.T) {
	for _, o := range []Options{
		{Python: filepath.Join(t.TempDir(), "no-python"), Peer: "../peers/fastapi_hub.py"},
		{Peer: ""},
	} {
		o.Bin, o.Worker, o.Dir, o.Paths = "unused", "unused", t.TempDir(), []string{PathFastAPI}
		res, err := Measure(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Paths) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Path != PathFastAPI || res.Skipped[0].Reason == "" {
			t.Errorf("python %q, peer %q: paths %+v, skipped %+v; want the peer skipped with a reason", o.Python, o.Peer, res.Paths, res.Skipped)
		}
		t.Log(res.Skipped)
	}
}
