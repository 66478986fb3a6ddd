package benchmarks

import (
	"context"
	"flag"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kairoscope/kairoscope/engine/model"
	"github.com/kairoscope/kairoscope/engine/ops"
)

// dataDir is where Run puts the data files both sides read; empty: the
// benchmark makes the same data itself.
var dataDir = flag.String("benchmarks.data", "", "read the benchmark data from this directory (written by Run) instead of generating it")

// epochTimeout bounds one benchmark's epochs: Epoch checks its context
// before every step, so a stuck run fails instead of hanging.
const epochTimeout = 10 * time.Minute

// BenchmarkEpoch times training epochs of the CPU engine (model.NewCPU, what
// the engine runs without a GPU), one sub-benchmark per configuration of a
// full run. An op is one epoch, after one untimed warm-up epoch; s/epoch and
// samples/s are reported with the allocations per epoch and the process's
// peak RSS (peak-RSS-B, VmHWM: Run times each configuration in a fresh
// process).
func BenchmarkEpoch(b *testing.B) {
	for _, c := range Configs(false) {
		b.Run(c.Name(), func(b *testing.B) { benchEpoch(b, c, model.NewCPU, nil) })
	}
}

// benchEpoch runs c's epochs on the trainers newTrainer makes; measure,
// when not nil, runs after the timed epochs, before the trainer is closed.
func benchEpoch(b *testing.B, c Config, newTrainer model.NewTrainer, measure func(*testing.B)) {
	x, r := benchData(b, c.Rows)
	tr, err := newTrainer(Features, c.Model(), 1)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), epochTimeout)
	defer cancel()
	rng := rand.New(rand.NewPCG(1, 2))
	if _, err := tr.Epoch(ctx, x, r, rng); err != nil { // warm-up
		b.Fatal(err)
	}
	b.ReportAllocs()
	var st model.EpochStats
	for b.Loop() {
		if st, err = tr.Epoch(ctx, x, r, rng); err != nil {
			b.Fatal(err)
		}
	}
	if measure != nil {
		measure(b)
	}
	if rss := selfPeakRSS(); rss > 0 {
		b.ReportMetric(float64(rss), "peak-RSS-B")
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(sec, "s/epoch")
	b.ReportMetric(float64(c.Rows)/sec, "samples/s")
	b.ReportMetric(float64(st.Steps), "steps/epoch")
	b.ReportMetric(st.Loss, "loss")
}

func benchData(b *testing.B, rows int) (x, r []float32) {
	if *dataDir == "" {
		return Synthetic(rows, DataSeed)
	}
	x, r, err := ReadData(*dataDir, rows)
	if err != nil {
		b.Fatal(err)
	}
	return x, r
}

// TestPrintEngine prints what the CPU engine runs on: the BLAS of its
// GEMMs and what executes its training steps. Run reads it from the built
// binary.
func TestPrintEngine(t *testing.T) {
	n, err := model.New(Features, Default.Model(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	t.Logf("BLAS: %s", ops.BLAS())
	t.Logf("Exec: %s", n.Exec())
}
