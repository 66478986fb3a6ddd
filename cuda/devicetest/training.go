package devicetest

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kairoscope/kairoscope/cuda"
	"github.com/kairoscope/kairoscope/engine/model"
)

// Tolerances of the training test, relative (norm-wise for arrays): the
// device sums in float32 in its own order (atomics across blocks on a GPU,
// cuBLAS's blocking), the CPU in float64 or row order, and Adam carries the
// difference from step to step. Measured on the emulator: about 5e-6 for
// the statistics and 1.3e-5 for the parameters after 3 epochs.
const (
	trainStatsTol  = 1e-4
	trainParamsTol = 2e-4
	forwardTol     = 2e-5
)

// Three epochs of the executor (cuda.NewTrainer on the device) against the
// CPU engine (model.New) from the same initialisation, data and shuffles: a
// 2×16 net, batch 32, 200 rows (7 steps, the last padded). The epoch
// statistics, the parameters after each epoch and Forward on the same
// parameters agree within the tolerances above; Snapshot/Restore round-trip
// bit for bit.
func testTraining(t *testing.T, dev cuda.Device) {
	const in, rows = 8, 200
	cfg := model.Config{Hidden: []int{16, 16}, LR: 1e-2, Batch: 32, BCEWeight: 0.5}
	x, y := synthetic(rows, in, 1)
	cpu, err := model.New(in, cfg, 11)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	tr, err := cuda.NewTrainer(dev)(in, cfg, 11)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := tr.Close(); err != nil {
			t.Errorf("trainer Close: %v", err)
		}
	}()
	params := func(tr model.Trainer) [][]float32 {
		t.Helper()
		s, err := tr.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	compareParams(t, "initial parameters", params(tr), cpu.Params(), 0)

	cr, dr := rand.New(rand.NewPCG(2, 3)), rand.New(rand.NewPCG(2, 3))
	for epoch := 1; epoch <= 3; epoch++ {
		want, err := cpu.Epoch(context.Background(), x, y, cr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tr.Epoch(context.Background(), x, y, dr)
		if err != nil {
			t.Fatal(err)
		}
		if got.Steps != 7 || want.Steps != 7 {
			t.Errorf("epoch %d: %d steps on the device, %d on the CPU, want 7", epoch, got.Steps, want.Steps)
		}
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"Loss", got.Loss, want.Loss}, {"NLL", got.NLL, want.NLL}, {"BCE", got.BCE, want.BCE}, {"Brier", got.Brier, want.Brier}} {
			if d := math.Abs(c.got-c.want) / max(math.Abs(c.want), 1e-12); !(d <= trainStatsTol) {
				t.Errorf("epoch %d %s: device %v, CPU %v (relative difference %.3g > %g)", epoch, c.name, c.got, c.want, d, trainStatsTol)
			}
		}
		worst := compareParams(t, "parameters", params(tr), cpu.Params(), trainParamsTol)
		t.Logf("epoch %d: loss device %.7g, CPU %.7g; parameters within %.3g", epoch, got.Loss, want.Loss, worst)
	}

	// Forward on the CPU's parameters, so that only Forward's rounding differs.
	s := params(cpu)
	if err := tr.Restore(s); err != nil {
		t.Fatal(err)
	}
	compareParams(t, "Snapshot after Restore", params(tr), s, 0)
	fx, _ := synthetic(50, in, 9)
	got, want := make([]float32, 50*model.Outputs), make([]float32, 50*model.Outputs)
	if err := tr.Forward(got, fx, 50); err != nil {
		t.Fatal(err)
	}
	if err := cpu.Forward(want, fx, 50); err != nil {
		t.Fatal(err)
	}
	if rel := closeness(got, want); !(rel <= forwardTol) {
		t.Errorf("Forward of 50 rows: relative difference %.3g > %g", rel, forwardTol)
	}
}

// compareParams fails when a parameter differs by more than tol, norm-wise
// relative, and returns the largest difference.
func compareParams(t *testing.T, what string, dev, cpu [][]float32, tol float64) float64 {
	t.Helper()
	if len(dev) != len(cpu) {
		t.Fatalf("%s: %d on the device, %d on the CPU", what, len(dev), len(cpu))
	}
	worst := 0.0
	for i := range cpu {
		if len(dev[i]) != len(cpu[i]) {
			t.Fatalf("%s %d: %d values on the device, %d on the CPU", what, i, len(dev[i]), len(cpu[i]))
		}
		rel := closeness(dev[i], cpu[i])
		worst = max(worst, rel)
		if !(rel <= tol) {
			t.Errorf("%s %d: relative difference %.3g > %g", what, i, rel, tol)
		}
	}
	return worst
}

// closeness is the largest |dev − cpu| over the largest |cpu|: the
// norm-wise relative error that float32 rounding bounds (an entry summed
// from terms of both signs can be near 0 and still carry their rounding).
// NaN anywhere is +Inf.
func closeness(dev, cpu []float32) float64 {
	var maxAbs, scale float64
	for i := range cpu {
		d := math.Abs(float64(dev[i]) - float64(cpu[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		maxAbs = max(maxAbs, d)
		scale = max(scale, math.Abs(float64(cpu[i])))
	}
	if maxAbs == 0 {
		return 0
	}
	return maxAbs / scale
}

// synthetic makes rows whose target is a noisy linear function of the
// inputs, with both signs of the target.
func synthetic(rows, in int, seed uint64) (x, y []float32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	x, y = make([]float32, rows*in), make([]float32, rows)
	for i := range rows {
		var s float64
		for j := range in {
			v := rng.NormFloat64()
			x[i*in+j] = float32(v)
			s += v * float64(j%3-1) / math.Sqrt(float64(in))
		}
		y[i] = float32(s + 0.3*rng.NormFloat64())
	}
	return x, y
}
