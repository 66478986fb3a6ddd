package engine

import (
	"slices"
	"testing"

	"github.com/kairoscope/kairoscope/engine/features"
	"github.com/kairoscope/kairoscope/schema"
)

// schema's run cost estimate counts the engine's defaults for the fields a
// request leaves out, and a tune's largest network.
func TestCostAssumesTheEngineDefaults(t *testing.T) {
	d := Defaults()
	if d.Folds != schema.CostDefaultFolds || d.Epochs != schema.CostDefaultEpochs || !slices.Equal(d.Model.Hidden, schema.CostDefaultHidden) ||
		DefaultTrials != schema.CostDefaultTrials {
		t.Errorf("engine defaults: folds %d, epochs %d, hidden %v, trials %d; the cost estimate assumes %d, %d, %v, %d",
			d.Folds, d.Epochs, d.Model.Hidden, DefaultTrials, schema.CostDefaultFolds, schema.CostDefaultEpochs, schema.CostDefaultHidden, schema.CostDefaultTrials)
	}
	size := func(h []int) int { return (schema.RunRequest{Hidden: h}).Cost(1, true).Weights }
	largest := 0
	for _, h := range DefaultSearchSpace().Hidden {
		largest = max(largest, size(h))
	}
	if size(schema.CostTuneHidden) != largest {
		t.Errorf("the cost of a tune counts %v, not the search space's largest network", schema.CostTuneHidden)
	}
	s := load(t, "bike.csv")
	fc, err := d.FeatureConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	f, err := features.NewFrame(s, fc)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.NumFeatures(); n > schema.CostFeatures || n < schema.CostFeatures-10 {
		t.Errorf("the model has %d inputs; the cost estimate assumes about %d", n, schema.CostFeatures)
	}
	if fc.Horizons != schema.CostDefaultHorizon {
		t.Errorf("a value series has %d horizons; the cost estimate assumes %d", fc.Horizons, schema.CostDefaultHorizon)
	}
}
