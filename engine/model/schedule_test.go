package model

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/kairoscope/kairoscope/engine/ops"
)

// The default net's schedule: 3 dense layers forward, the fused loss, then
// 5 GEMMs (3 dW, 2 dX), 2 ReLU gradients and 3 column sums backward; every
// step's inputs come before it; each parameter has its gradient; the dense
// chain reaches the loss; Adam covers every parameter.
func TestLowerTheDefaultNet(t *testing.T) {
	n, err := New(5, Config{Hidden: []int{8, 8}, LR: 1e-3, Batch: 16, BCEWeight: 0.5}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	s, err := n.Lower()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	seen := map[*G.Node]bool{s.X: true, s.R: true, s.WT: true}
	for _, p := range s.Params {
		seen[p.Node] = true
	}
	for _, c := range s.Consts {
		seen[c] = true
	}
	phase := Forward
	for i, st := range s.Steps {
		kinds[fmt.Sprintf("%T", st)]++
		for _, in := range st.Inputs() {
			if !seen[in] {
				t.Errorf("step %d (%T) reads %v before it is computed", i, st, in)
			}
		}
		seen[st.Output()] = true
		if ls, ok := st.(*LossStep); ok {
			seen[ls.Loss] = true
		}
		if st.Phase() < phase {
			t.Errorf("step %d (%T) is in phase %d after phase %d", i, st, st.Phase(), phase)
		}
		phase = st.Phase()
	}
	want := map[string]int{"*model.DenseStep": 3, "*model.LossStep": 1, "*model.MatMulStep": 5, "*model.ActGradStep": 2, "*model.ColSumStep": 3}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("steps %v, want %v", kinds, want)
	}
	if len(s.Params) != 6 || len(s.Dense) != 3 || len(s.Update.Params) != 6 || s.Metrics.Loss != s.Loss {
		t.Errorf("%d params, %d dense, Update %d, Metrics %v", len(s.Params), len(s.Dense), len(s.Update.Params), s.Metrics.Loss)
	}
	for i, p := range s.Params {
		if p.Node != n.params[i] || p.Grad != n.gradN[i] {
			t.Errorf("param %d: %v with gradient %v, want %v and %v", i, p.Node, p.Grad, n.params[i], n.gradN[i])
		}
	}
	if s.Loss.Loss != n.lossN || s.Loss.Out != n.outN || s.Loss.SeedValue != 1 || s.Loss.Rows != 16 || s.Loss.BCEWeight != 0.5 {
		t.Errorf("loss step %+v", s.Loss)
	}
	if d := s.Dense[0]; d.X != s.X || d.Rows != 16 || d.In != 5 || d.Width != 8 || d.Act != ops.ReLU {
		t.Errorf("first dense step %+v", d)
	}
	if len(s.Order) != len(seen) {
		t.Errorf("Order has %d nodes, the steps touch %d", len(s.Order), len(seen))
	}
}

// What the schedule cannot express is ErrUnsupported naming it, and the
// net then trains on the TapeMachine and says why.
func TestLowerRefusesWhatItCannotExpress(t *testing.T) {
	cfg := Config{Hidden: []int{4}, LR: 1e-3, Batch: 8, BCEWeight: 0.5}
	for _, c := range []struct {
		name, says string
		change     func(t *testing.T, n *Net)
	}{
		{"an op outside package ops", "square", func(t *testing.T, n *Net) {
			if _, err := G.Square(n.params[0]); err != nil {
				t.Fatal(err)
			}
		}},
		{"a second loss", "2 ProbLoss", func(t *testing.T, n *Net) {
			// Another weight: Gorgonia would return the identical node.
			if _, err := ops.ProbLoss(n.outN, n.rN, n.wtN, 0.25); err != nil {
				t.Fatal(err)
			}
		}},
		{"an input that is not the net's", "neither a batch input nor a parameter", func(t *testing.T, n *Net) {
			G.NewScalar(n.g, G.Float32, G.WithName("stray"), G.WithValue(float32(1)))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, err := New(3, cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			c.change(t, n)
			_, err = n.Lower()
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("Lower: %v, want ErrUnsupported saying %q", err, c.says)
			}
			if err := n.compile(); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(n.Exec(), ExecTapeMachine+" (host program: ") || !strings.Contains(n.Exec(), c.says) {
				t.Errorf("Exec() = %q", n.Exec())
			}
		})
	}
}
