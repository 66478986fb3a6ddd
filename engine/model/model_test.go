package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// synthetic makes rows whose target is a noisy linear function of the
// inputs, so a working net must learn it.
func synthetic(rows, in int, seed uint64) (x, y []float32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	x, y = make([]float32, rows*in), make([]float32, rows)
	for i := 0; i < rows; i++ {
		var s float64
		for j := 0; j < in; j++ {
			v := rng.NormFloat64()
			x[i*in+j] = float32(v)
			s += v * float64(j%3-1) / math.Sqrt(float64(in))
		}
		y[i] = float32(s + 0.3*rng.NormFloat64())
	}
	return x, y
}

// snapshot is t's Snapshot of tr, which must not fail.
func snapshot(t testing.TB, tr Trainer) [][]float32 {
	t.Helper()
	s, err := tr.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newNet(t testing.TB, in, batch int) *Net {
	t.Helper()
	n, err := New(in, Config{Hidden: []int{16, 16}, LR: 1e-2, Batch: batch, BCEWeight: 0.5}, 7)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestTrainingLearns(t *testing.T) {
	x, y := synthetic(600, 8, 1)
	n := newNet(t, 8, 64)
	rng := rand.New(rand.NewPCG(1, 2))
	first, err := n.Epoch(context.Background(), x, y, rng)
	if err != nil {
		t.Fatal(err)
	}
	var last EpochStats
	for e := 0; e < 30; e++ {
		if last, err = n.Epoch(context.Background(), x, y, rng); err != nil {
			t.Fatal(err)
		}
	}
	// Noise of sd 0.3 bounds the NLL below at about log(0.3)+1.42 = 0.21.
	if last.Loss >= first.Loss-0.5 || last.NLL > 0.6 || last.Steps != 10 {
		t.Errorf("loss %.3f → %.3f (NLL %.3f, %d steps): not learning", first.Loss, last.Loss, last.NLL, last.Steps)
	}
}

// Forward (outside the graph) and the graph's forward pass agree.
func TestForwardMatchesGraph(t *testing.T) {
	x, y := synthetic(32, 5, 3)
	n := newNet(t, 5, 32)
	want := make([]float32, 32*Outputs)
	if err := n.Forward(want, x, 32); err != nil {
		t.Fatal(err)
	}
	bx, br, bw := n.Batch()
	copy(bx, x)
	copy(br, y)
	for i := range bw {
		bw[i] = 1
	}
	if _, err := n.Step(); err != nil {
		t.Fatal(err)
	}
	for i, v := range n.LastOutputs() {
		if math.Abs(float64(v-want[i])) > 1e-5 {
			t.Fatalf("output %d: graph %v, Forward %v", i, v, want[i])
		}
	}
}

// Padding rows (weight 0) change neither the loss nor the update.
func TestPaddingRowsAreIgnored(t *testing.T) {
	x, y := synthetic(20, 4, 5)
	step := func(garbage float32) (float64, [][]float32) {
		n := newNet(t, 4, 32)
		bx, br, bw := n.Batch()
		for k := 0; k < 32; k++ {
			if k < 20 {
				copy(bx[k*4:(k+1)*4], x[k*4:(k+1)*4])
				br[k], bw[k] = y[k], 1
			} else {
				for j := 0; j < 4; j++ {
					bx[k*4+j] = garbage * float32(j+1)
				}
				br[k], bw[k] = garbage, 0
			}
		}
		loss, err := n.Step()
		if err != nil {
			t.Fatal(err)
		}
		return loss, snapshot(t, n)
	}
	l1, p1 := step(0)
	l2, p2 := step(37)
	if l1 != l2 {
		t.Errorf("loss %v with zero padding, %v with garbage padding", l1, l2)
	}
	for i := range p1 {
		for j := range p1[i] {
			if p1[i][j] != p2[i][j] {
				t.Fatalf("param %d[%d] differs after the step: %v vs %v", i, j, p1[i][j], p2[i][j])
			}
		}
	}
}

func TestSnapshotRestore(t *testing.T) {
	x, y := synthetic(64, 4, 9)
	n := newNet(t, 4, 32)
	s := snapshot(t, n)
	if _, err := n.Epoch(context.Background(), x, y, rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	if n.Params()[0][0] == s[0][0] {
		t.Fatal("an epoch left the parameters unchanged")
	}
	if err := n.Restore(s); err != nil {
		t.Fatal(err)
	}
	if n.Params()[0][0] != s[0][0] {
		t.Error("Restore did not bring the parameters back")
	}
	for _, bad := range [][][]float32{s[:len(s)-1], append(append([][]float32{}, s[:len(s)-1]...), s[len(s)-1][1:])} {
		if err := n.Restore(bad); err == nil {
			t.Errorf("Restore of a snapshot of another shape (%d arrays) did not fail", len(bad))
		}
	}
}

func TestEarlyStopping(t *testing.T) {
	e := NewEarlyStopping(2, 0.01)
	for i, c := range []struct {
		loss            float64
		improved, stops bool
	}{{1, true, false}, {0.995, false, false}, {0.9, true, false}, {0.95, false, false}, {math.NaN(), false, true}} {
		imp, stop := e.Observe(i, c.loss)
		if imp != c.improved || stop != c.stops {
			t.Errorf("epoch %d loss %v: improved %v stop %v", i, c.loss, imp, stop)
		}
	}
	if e.BestEpoch != 2 || e.Best != 0.9 {
		t.Errorf("best %v at %d", e.Best, e.BestEpoch)
	}
}

func TestEpochCancels(t *testing.T) {
	x, y := synthetic(640, 4, 9)
	n := newNet(t, 4, 32)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.Epoch(ctx, x, y, rand.New(rand.NewPCG(1, 1))); err != context.Canceled {
		t.Errorf("err = %v", err)
	}
}

// An EpochTrace in the context hears of every step, the last partial one
// included, in order.
func TestEpochTrace(t *testing.T) {
	x, y := synthetic(100, 4, 9)
	n := newNet(t, 4, 32)
	var got [][2]int
	ctx := WithEpochTrace(context.Background(), &EpochTrace{StepDone: func(done, total int) { got = append(got, [2]int{done, total}) }})
	st, err := n.Epoch(ctx, x, y, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]int{{1, 4}, {2, 4}, {3, 4}, {4, 4}}
	if fmt.Sprint(got) != fmt.Sprint(want) || st.Steps != 4 {
		t.Errorf("trace %v over %d steps, want %v", got, st.Steps, want)
	}
}

// EpochRows caps an epoch at the first rows of its shuffled order: fewer
// steps, a different subset each epoch, and the statistics of those rows.
func TestEpochRowsCapsTheEpoch(t *testing.T) {
	x, y := synthetic(300, 5, 1)
	base := Config{Hidden: []int{16, 16}, LR: 1e-2, Batch: 32, BCEWeight: 0.5}
	cfg := base
	cfg.EpochRows = 100
	capped, err := New(5, cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	full, err := New(5, base, 3)
	if err != nil {
		t.Fatal(err)
	}
	st, err := capped.Epoch(context.Background(), x, y, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	fst, err := full.Epoch(context.Background(), x, y, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	if want := (100 + cfg.Batch - 1) / cfg.Batch; st.Steps != want || fst.Steps != (300+cfg.Batch-1)/cfg.Batch {
		t.Errorf("steps %d capped, %d full; want %d and %d", st.Steps, fst.Steps, want, (300+cfg.Batch-1)/cfg.Batch)
	}
	if st.Loss == fst.Loss {
		t.Error("the capped epoch reports the full epoch's loss")
	}
	if EpochRowsOf(cfg, 50) != 50 || EpochRowsOf(cfg, 300) != 100 || EpochRowsOf(base, 300) != 300 {
		t.Error("EpochRowsOf")
	}
}
