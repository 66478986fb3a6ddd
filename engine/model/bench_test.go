package model

import (
	"context"
	"math/rand/v2"
	"testing"
)

// BenchmarkEpoch is one training epoch of the default model (2×64, batch
// 256, Adam) on 10,000 rows of 40 features: 40 steps, the last one padded,
// on the host program (what New runs) and on Gorgonia's TapeMachine
// (Config.TapeMachine), for comparison.
func BenchmarkEpoch(b *testing.B) {
	for _, c := range []struct {
		name string
		tape bool
	}{{"exec=host", false}, {"exec=tapemachine", true}} {
		b.Run(c.name, func(b *testing.B) {
			const rows, in = 10000, 40
			x, y := synthetic(rows, in, 1)
			n, err := New(in, Config{Hidden: []int{64, 64}, LR: 1e-3, Batch: 256, BCEWeight: 0.5, TapeMachine: c.tape}, 1)
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			rng := rand.New(rand.NewPCG(1, 1))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := n.Epoch(context.Background(), x, y, rng); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
