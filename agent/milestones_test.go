package agent

import (
	"encoding/json"
	"testing"

	"github.com/kairoscope/kairoscope/schema"
)

func TestMilestones(t *testing.T) {
	warn := "coverage 0.70 is outside 0.90 ± 0.08"
	msgs := []any{
		schema.TrainingStart{Type: schema.TypeTrainingStart, TotalFolds: 2, TotalEpochs: 4},
		schema.EpochMetrics{Type: schema.TypeEpochMetrics, FoldID: 0, Epoch: 0, Metrics: schema.Metrics{ValAUC: 0.6}},
		schema.EpochMetrics{Type: schema.TypeEpochMetrics, FoldID: 0, Epoch: 1, Metrics: schema.Metrics{ValAUC: 0.7}}, // best
		schema.EpochMetrics{Type: schema.TypeEpochMetrics, FoldID: 0, Epoch: 2, Metrics: schema.Metrics{ValAUC: 0.65}},
		schema.FoldComplete{Type: schema.TypeFoldComplete, FoldID: 0, CoverageWarning: &warn},                         // early stop after 3 of 4: 4 of 8 done
		schema.EpochMetrics{Type: schema.TypeEpochMetrics, FoldID: 1, Epoch: 0, Metrics: schema.Metrics{ValAUC: 0.5}}, // 5 of 8: past half
	}
	var kinds []string
	m := &milestones{}
	for _, msg := range msgs {
		b, _ := json.Marshal(msg)
		for _, n := range m.observe(b) {
			nb, _ := json.Marshal(n)
			if err := schema.Validate(nb); err != nil {
				t.Errorf("%s: %v", nb, err)
			}
			kinds = append(kinds, n.Kind)
		}
	}
	want := []string{"best_auc", "early_stop", "coverage_warning", "progress_50"}
	if len(kinds) != len(want) {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Errorf("kinds %v, want %v", kinds, want)
		}
	}
}

// A fold that starts again after running out of memory does not count its
// first attempt's epochs towards progress_50.
func TestMilestonesOOMRetry(t *testing.T) {
	fold := 0
	msgs := []any{
		schema.TrainingStart{Type: schema.TypeTrainingStart, TotalFolds: 2, TotalEpochs: 2},
		schema.EpochMetrics{Type: schema.TypeEpochMetrics, FoldID: 0, Epoch: 0},
		schema.Notification{Type: schema.TypeNotification, Level: schema.LevelWarning, Kind: schema.KindOOMRetry, FoldID: &fold, Message: "CUDA out of memory; …"},
		schema.EpochMetrics{Type: schema.TypeEpochMetrics, FoldID: 0, Epoch: 0}, // 1 of 4
		schema.EpochMetrics{Type: schema.TypeEpochMetrics, FoldID: 0, Epoch: 1}, // 2 of 4: half
	}
	m := &milestones{}
	for i, msg := range msgs {
		b, _ := json.Marshal(msg)
		notes := m.observe(b)
		if half := len(notes) == 1 && notes[0].Kind == schema.KindProgress50; half != (i == len(msgs)-1) {
			t.Errorf("after message %d: %d notifications %v; progress_50 belongs after the last", i, len(notes), notes)
		}
	}
}
