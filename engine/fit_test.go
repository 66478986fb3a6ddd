package engine

import (
	"context"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/kairoscope/kairoscope/engine/features"
	"github.com/kairoscope/kairoscope/engine/model"
)

// With no calibration rows, fit trains every epoch and keeps the last
// one's parameters (a forecast's refit): the same net as training by hand.
func TestFitWithoutCalibrationKeepsTheLastEpoch(t *testing.T) {
	const in, rows, seed = 4, 200, 7
	rng := rand.New(rand.NewPCG(1, 2))
	x, ys := make([]float32, rows*in), make([]float32, rows)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for i := range ys {
		ys[i] = x[i*in] + float32(0.1*rng.NormFloat64())
	}
	cfg := Defaults()
	cfg.Epochs, cfg.Patience = 4, 1
	cfg.Model.Hidden, cfg.Model.Batch = []int{8}, 32
	sc := features.Scaler{Mean: make([]float64, in), Std: make([]float64, in), YScale: 1}
	var seen []int
	ft, err := fit(context.Background(), cfg, sc, part{x: x, ys: ys}, part{}, seed, func(epoch int, _ model.Trainer, _ model.EpochStats, _ outputs) error {
		seen = append(seen, epoch)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ft.net.Close()
	if ft.epochs != 4 || ft.bestEpoch != 3 || !reflect.DeepEqual(seen, []int{0, 1, 2, 3}) {
		t.Fatalf("epochs %d, best %d, callbacks %v; want 4 epochs, the last kept", ft.epochs, ft.bestEpoch, seen)
	}

	want, err := model.NewCPU(in, cfg.Model, seed)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	byHand := rand.New(rand.NewPCG(seed, 0x73687566)) // fit's
	for range 4 {
		if _, err := want.Epoch(context.Background(), x, ys, byHand); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ft.net.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	byHandParams, err := want.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, byHandParams) {
		t.Error("fit's net differs from 4 epochs trained by hand")
	}
}
