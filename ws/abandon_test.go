package ws

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kairoscope/kairoscope/runlog"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// A plain GET of /ws/predict, or one from a refused Origin, starts no
// forecast: it is answered before anything is queued.
func TestPredictQueuesNothingBeforeTheUpgrade(t *testing.T) {
	jobs := &fakeJobs{run: forecastScript(make(chan struct{}))}
	ts := newTestServer(t, jobs, nil)
	for range 10 {
		if code, _, msg := request(t, ts, "GET", "/ws/predict", ""); code != 400 || !strings.Contains(msg, "WebSocket") {
			t.Fatalf("a plain GET: %d %q", code, msg)
		}
		if code := dialWith(t, ts, "/ws/predict", "Origin", "https://evil.example"); code != 403 {
			t.Fatalf("a refused Origin: %d", code)
		}
		if code, _, _ := request(t, ts, "GET", "/ws/predict", "", "Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Key", "x", "Sec-WebSocket-Version", "8"); code != 400 {
			t.Fatalf("WebSocket version 8: %d", code)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(ts.srv.records.list(runlog.LaneForecast)); n != 0 || jobs.calls.Load() != 0 {
		t.Errorf("%d forecasts queued, %d run, by requests refused before the upgrade", n, jobs.calls.Load())
	}
}

// A forecast whose clients all left is cancelled after the grace; one
// rejoined within it runs on. Abandoned forecasts do not keep the next
// client out.
func TestPredictAbandonedIsCancelled(t *testing.T) {
	var cancelled atomic.Int32
	jobs := &fakeJobs{run: func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
		err := untilCancelled(ctx, spec, emit)
		cancelled.Add(1)
		return err
	}}
	ts := newTestServer(t, jobs, func(c *Config) { c.ForecastGrace = 300 * time.Millisecond; c.MaxQueuedForecasts = 2 })
	// Four clients ask for four forecasts and leave at once.
	for h := 1; h <= 4; h++ {
		c, resp, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws%s/ws/predict?horizon=%d", strings.TrimPrefix(ts.URL, "http"), h), nil)
		if err != nil {
			if resp != nil && resp.StatusCode == 503 {
				continue // the queue is full for now: that is what abandoning fixes
			}
			t.Fatal(err)
		}
		c.Close()
	}
	waitFor(t, "the abandoned forecasts to end", func() bool {
		for _, r := range ts.srv.records.list(runlog.LaneForecast) {
			if !runlog.Ended(r.State) {
				return false
			}
		}
		return true
	})
	for _, r := range ts.srv.records.list(runlog.LaneForecast) {
		if r.State != runlog.StateCancelled {
			t.Errorf("abandoned forecast %s is %s", r.ID, r.State)
		}
	}
	// A real client gets its forecast: joined, not refused.
	c := ts.dial(t, "/ws/predict?horizon=9")
	readUntil(t, c, func(m map[string]any) bool { return m["status"] == schema.StatusMessage })

	// It drops and rejoins within the grace: the same forecast, not cancelled.
	first := len(ts.srv.records.list(runlog.LaneForecast))
	c.Close()
	time.Sleep(50 * time.Millisecond)
	c2 := ts.dial(t, "/ws/predict?horizon=9")
	readUntil(t, c2, func(m map[string]any) bool { return m["status"] == schema.StatusMessage })
	time.Sleep(500 * time.Millisecond)
	recs := ts.srv.records.list(runlog.LaneForecast)
	if len(recs) != first || recs[len(recs)-1].State != runlog.StateRunning {
		t.Errorf("after a rejoin within the grace: %d forecasts (want %d), the last %s", len(recs), first, recs[len(recs)-1].State)
	}
}
