package ws

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kairoscope/kairoscope/worker"
)

// A request whose estimated cost exceeds MaxRunCost is refused with 400
// naming the limit, and nothing is queued.
func TestRunCostLimit(t *testing.T) {
	jobs := &fakeJobs{run: trainScript}
	ts := newTestServer(t, jobs, nil)
	for _, body := range []string{
		`{"kind":"tune","trials":50,"folds":20,"epochs":1000}`,
		`{"hidden":[4096,4096,4096,4096,4096,4096,4096,4096]}`,
	} {
		code, m := postRun(t, ts, body)
		if e := fmt.Sprint(m["error"]); code != 400 || !strings.Contains(e, "cost") || !strings.Contains(e, "--max-run-cost") {
			t.Errorf("%s: %d %s", body, code, e)
		}
	}
	if n := len(listOf(t, ts)); n != 0 {
		t.Errorf("%d runs queued", n)
	}
	if code, m := postRun(t, ts, `{"dataset":"transit","kind":"tune"}`); code != http.StatusAccepted {
		t.Errorf("a default tune of transit: %d %v", code, m)
	}
	small := newTestServer(t, jobs, func(c *Config) { c.MaxRunCost = 1e9 })
	if code, m := postRun(t, small, `{}`); code != 400 || !strings.Contains(fmt.Sprint(m["error"]), "exceeds the server's limit of 1e+09") {
		t.Errorf("defaults over a small limit: %d %v", code, m)
	}
}

// One client starts at most RunBurst jobs at once: then 429 with
// Retry-After, naming the limit, for runs and new forecasts alike.
func TestJobRateLimit(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	ts := newTestServer(t, &fakeJobs{run: func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
		if spec.Forecast != nil {
			return forecastScript(release)(ctx, spec, emit)
		}
		return trainScript(ctx, spec, emit)
	}}, func(c *Config) { c.RunBurst, c.RunsPerMinute = 3, 1 })
	for i := range 3 {
		if code, m := postRun(t, ts, `{}`); code != http.StatusAccepted {
			t.Fatalf("run %d: %d %v", i, code, m)
		}
	}
	req, _ := http.NewRequest("POST", ts.URL+"/api/runs", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("the 4th run: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	if _, m := postRun(t, ts, `{}`); !strings.Contains(fmt.Sprint(m["error"]), "--runs-per-minute") {
		t.Errorf("error %v", m["error"])
	}
	if code := dialWith(t, ts, "/ws/predict"); code != http.StatusTooManyRequests {
		t.Errorf("a new forecast past the limit: %d", code)
	}
}

// The bucket refills at its rate, forgets refilled clients when full,
// and counts each client apart.
func TestJobRateBucket(t *testing.T) {
	now := time.Unix(0, 0)
	l := newJobRate(60, 2) // one a second, two at once
	l.now = func() time.Time { return now }
	for i, want := range []bool{true, true, false} {
		if ok, _ := l.take("a"); ok != want {
			t.Fatalf("take %d: %v", i, ok)
		}
	}
	if ok, retry := l.take("a"); ok || retry != time.Second {
		t.Errorf("retry %v", retry)
	}
	if ok, _ := l.take("b"); !ok {
		t.Error("another client was limited")
	}
	now = now.Add(time.Second)
	if ok, _ := l.take("a"); !ok {
		t.Error("no refill after a second")
	}
	for i := range maxBuckets + 10 {
		l.take(fmt.Sprint("c", i))
	}
	now = now.Add(time.Hour)
	l.take("new")
	if len(l.buckets) > maxBuckets {
		t.Errorf("%d buckets kept", len(l.buckets))
	}
}
