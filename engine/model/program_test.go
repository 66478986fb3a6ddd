package model

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// The host program computes what the TapeMachine computes, bit for bit:
// same losses, statistics (up to the order of float64 sums) and parameters
// after three epochs with a padded last batch.
func TestProgramMatchesTapeMachine(t *testing.T) {
	x, y := synthetic(300, 6, 4)
	cfg := Config{Hidden: []int{16, 8}, LR: 1e-2, Batch: 64, BCEWeight: 0.5}
	host, err := New(6, cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	cfg.TapeMachine = true
	tape, err := New(6, cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer tape.Close()
	if host.Exec() != ExecHost || tape.Exec() != ExecTapeMachine {
		t.Fatalf("Exec: %q and %q", host.Exec(), tape.Exec())
	}
	hr, tr := rand.New(rand.NewPCG(1, 2)), rand.New(rand.NewPCG(1, 2))
	for e := 0; e < 3; e++ {
		hs, err := host.Epoch(context.Background(), x, y, hr)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := tape.Epoch(context.Background(), x, y, tr)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			h, t float64
		}{{"loss", hs.Loss, ts.Loss}, {"nll", hs.NLL, ts.NLL}, {"bce", hs.BCE, ts.BCE}, {"brier", hs.Brier, ts.Brier}} {
			if math.Abs(c.h-c.t) > 1e-12*math.Abs(c.t) {
				t.Errorf("epoch %d %s: host %v, TapeMachine %v", e, c.name, c.h, c.t)
			}
		}
		if hs.Steps != 5 || ts.Steps != 5 {
			t.Errorf("steps %d and %d, want 5", hs.Steps, ts.Steps)
		}
	}
	hp, tp := host.Params(), tape.Params()
	for i := range hp {
		for j := range hp[i] {
			if hp[i][j] != tp[i][j] {
				t.Fatalf("param %d[%d]: host %v, TapeMachine %v", i, j, hp[i][j], tp[i][j])
			}
		}
	}
	// One more step on the same batch: same loss and outputs.
	for _, n := range []*Net{host, tape} {
		bx, br, bw := n.Batch()
		copy(bx, x)
		copy(br, y)
		for i := range bw {
			bw[i] = 1
		}
	}
	hl, err := host.Step()
	if err != nil {
		t.Fatal(err)
	}
	tl, err := tape.Step()
	if err != nil {
		t.Fatal(err)
	}
	if hl != tl {
		t.Errorf("step loss: host %v, TapeMachine %v", hl, tl)
	}
	ho, to := host.LastOutputs(), tape.LastOutputs()
	for i := range to {
		if ho[i] != to[i] {
			t.Fatalf("output %d: host %v, TapeMachine %v", i, ho[i], to[i])
		}
	}
}

// A host step allocates nothing.
func TestHostStepAllocatesNothing(t *testing.T) {
	x, y := synthetic(64, 5, 2)
	n := newNet(t, 5, 64)
	bx, br, bw := n.Batch()
	copy(bx, x)
	copy(br, y)
	for i := range bw {
		bw[i] = 1
	}
	if a := testing.AllocsPerRun(20, func() {
		if _, err := n.Step(); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("%v allocations per step", a)
	}
}
