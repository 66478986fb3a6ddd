package ws

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// The replica's collector reports runs by state, queues, agents and their
// slots, clients and what the hubs sent, read at scrape time.
func TestMetrics(t *testing.T) {
	ts := newTestServer(t, &fakeJobs{run: trainScript}, nil)
	c := ts.dial(t, "/ws")
	_, info := postRun(t, ts, `{}`)
	readUntil(t, c, isType(schema.TypeTrainingComplete))
	waitState(t, ts, info["run_id"].(string), runlog.StateCompleted)
	reg := prometheus.NewRegistry()
	reg.MustRegister(ts.srv.Collector())
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`kairoscope_runs{lane="train",state="completed"} 1`,
		`kairoscope_runs{lane="train",state="queued"} 0`,
		`kairoscope_queue_depth{class="any",lane="train"} 0`,
		`kairoscope_agents 1`,
		`kairoscope_agent_slots{kind="total",lane="train"} 1`,
		`kairoscope_agent_slots{kind="free",lane="forecast"} 1`,
		`kairoscope_ws_clients{endpoint="/ws"} 1`,
		`kairoscope_ws_slow_closes_total{endpoint="/ws"} 0`,
		`kairoscope_delivery_lag_seconds_count`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %s in\n%s", want, body)
		}
	}
	if strings.Contains(body, `kairoscope_ws_messages_sent_total{endpoint="/ws"} 0`) {
		t.Error("the hub sent messages, the counter says none")
	}
}

// A run's reports, as its agent stored them in the log, are served by any
// replica; a temporary file is not among them.
func TestReports(t *testing.T) {
	ts := newTestServer(t, &fakeJobs{run: func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
		os.MkdirAll(filepath.Join(spec.Reports, "predictions"), 0o755)
		os.WriteFile(filepath.Join(spec.Reports, "summary.json"), []byte(`{"folds":1}`), 0o644)
		os.WriteFile(filepath.Join(spec.Reports, "predictions", "p.csv"), []byte("timestamp\n"), 0o644)
		os.WriteFile(filepath.Join(spec.Reports, ".summary.json.tmp"), []byte(`{`), 0o644)
		return trainScript(ctx, spec, emit)
	}}, nil)
	_, info := postRun(t, ts, `{}`)
	id := info["run_id"].(string)
	waitState(t, ts, id, runlog.StateCompleted)
	get := func(path string) (int, string) {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, b := get("/api/runs/" + id + "/reports"); code != 200 || !strings.Contains(b, `"name": "predictions/p.csv"`) ||
		!strings.Contains(b, `"name": "summary.json"`) || strings.Contains(b, ".tmp") {
		t.Errorf("list: %d %s", code, b)
	}
	if code, b := get("/api/runs/" + id + "/reports/summary.json"); code != 200 || b != `{"folds":1}` {
		t.Errorf("summary.json: %d %s", code, b)
	}
	for _, p := range []string{"/api/runs/" + id + "/reports/nope.json", "/api/runs/run_000000000000/reports", "/api/runs/" + id + "/reports/../x"} {
		if code, _ := get(p); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, code)
		}
	}
}
