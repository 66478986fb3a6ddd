package ws

import (
	"context"
	"testing"

	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// A training epoch's prediction_delta reaches /ws clients without its rows
// unless they ask with ?deltas=all; the final one, and every other
// message, goes whole to everyone; seq is the same for both, live and in a
// replay.
func TestDeltasAbridged(t *testing.T) {
	y := schema.Float(0.5)
	rows := []schema.Prediction{{Timestamp: "2012-06-01T00:00:00Z", YTrue: &y, Mu: 0.1, Sigma: 1, PUpRaw: 0.5, PUpCal: 0.5, ConformalP: 0.5, PITZ: 0.4},
		{Timestamp: "2012-06-02T00:00:00Z", YTrue: &y, Mu: 0.2, Sigma: 1, PUpRaw: 0.6, PUpCal: 0.6, ConformalP: 0.7, PITZ: 0.3}}
	script := func(ctx context.Context, spec worker.Spec, emit func([]byte)) error {
		emitJSON(emit, schema.TrainingStart{Type: schema.TypeTrainingStart, UseCV: true, TotalFolds: 1, TotalEpochs: 1, Device: "cpu"})
		emitJSON(emit, schema.EpochMetrics{Type: schema.TypeEpochMetrics, ElapsedSeconds: 1})
		emitJSON(emit, schema.PredictionDelta{Type: schema.TypePredictionDelta, Part: 1, Parts: 1, Predictions: rows})
		emitJSON(emit, schema.PredictionDelta{Type: schema.TypePredictionDelta, Part: 1, Parts: 1, Final: true, Predictions: rows})
		emitJSON(emit, schema.FoldComplete{Type: schema.TypeFoldComplete, PredictionsPath: "p.csv", CalibrationMethod: "raw"})
		emitJSON(emit, schema.TrainingComplete{Type: schema.TypeTrainingComplete, FoldsCompleted: 1, SummaryPath: "s.json"})
		return nil
	}
	ts := newTestServer(t, &fakeJobs{run: script}, nil)
	lite, full := ts.dial(t, "/ws"), ts.dial(t, "/ws?deltas=all")
	hubTestWaitFor(t, "2 clients", func() bool { return ts.srv.hub.Clients() == 2 })
	if code, info := postRun(t, ts, `{}`); code != 202 {
		t.Fatalf("%d %v", code, info)
	}
	check := func(name string, msgs []map[string]any, whole bool) {
		t.Helper()
		var deltas []map[string]any
		for i, m := range msgs {
			if m["seq"] != float64(i+1) {
				t.Errorf("%s: message %d has seq %v", name, i, m["seq"])
			}
			if m["type"] == schema.TypePredictionDelta {
				deltas = append(deltas, m)
			}
		}
		if len(deltas) != 2 {
			t.Fatalf("%s: %d deltas, want 2", name, len(deltas))
		}
		epoch, final := deltas[0], deltas[1]
		if n := len(final["predictions"].([]any)); n != 2 || final["omitted"] != nil {
			t.Errorf("%s: the final delta has %d rows, omitted %v; want them all", name, n, final["omitted"])
		}
		n := len(epoch["predictions"].([]any))
		if whole && (n != 2 || epoch["omitted"] != nil) || !whole && (n != 0 || epoch["omitted"] != float64(2)) {
			t.Errorf("%s: the epoch's delta has %d rows, omitted %v", name, n, epoch["omitted"])
		}
	}
	check("/ws", readUntil(t, lite, isType(schema.TypeTrainingComplete)), false)
	check("/ws?deltas=all", readUntil(t, full, isType(schema.TypeTrainingComplete)), true)
	check("replay on /ws", readUntil(t, ts.dial(t, "/ws"), isType(schema.TypeTrainingComplete)), false)
	check("replay on /ws?deltas=all", readUntil(t, ts.dial(t, "/ws?deltas=all"), isType(schema.TypeTrainingComplete)), true)
}
