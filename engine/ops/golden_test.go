package ops_test

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kairoscope/kairoscope/engine/optim"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

var update = flag.Bool("update", false, "regenerate testdata/golden.json with /usr/bin/python3 (needs torch)")

const goldenPath = "testdata/golden.json"

var regenerate sync.Once

type goldenTensor struct {
	Name  string    `json:"name"`
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

type golden struct {
	TorchVersion string         `json:"torch_version"`
	Dtype        string         `json:"dtype"`
	N            int            `json:"n"`
	In           int            `json:"in"`
	Hidden       []int          `json:"hidden"`
	Out          int            `json:"out"`
	BCEWeight    float64        `json:"bce_weight"`
	X            []float64      `json:"x"`
	R            []float64      `json:"r"`
	Wt           []float64      `json:"wt"`
	Params       []goldenTensor `json:"params"`
	Loss         float64        `json:"loss"`
	Grads        []goldenTensor `json:"grads"`
	Adam         struct {
		LR     float64        `json:"lr"`
		Beta1  float64        `json:"beta1"`
		Beta2  float64        `json:"beta2"`
		Eps    float64        `json:"eps"`
		Steps  int            `json:"steps"`
		Losses []float64      `json:"losses"`
		Params []goldenTensor `json:"params"`
	} `json:"adam"`
}

// loadGolden reads testdata/golden.json (regenerating it first with
// -update) and checks its shapes before any value is compared.
func loadGolden(t *testing.T) *golden {
	t.Helper()
	if *update {
		var err error
		var out []byte
		regenerate.Do(func() {
			cmd := exec.Command("/usr/bin/python3", filepath.Join("engine", "ops", "testdata", "gen_golden.py"))
			cmd.Dir = filepath.Join("..", "..") // the repository root
			out, err = cmd.CombinedOutput()
		})
		if err != nil {
			t.Fatalf("regenerating %s: %v\n%s", goldenPath, err, out)
		}
	}
	b, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	var gd golden
	if err := json.Unmarshal(b, &gd); err != nil {
		t.Fatalf("%s: %v", goldenPath, err)
	}
	if gd.Dtype != "float64" {
		t.Fatalf("%s: dtype %q, want float64", goldenPath, gd.Dtype)
	}
	sizes := gd.sizes()
	if len(gd.X) != gd.N*gd.In || len(gd.R) != gd.N || len(gd.Wt) != gd.N {
		t.Fatalf("%s: inputs have %d, %d, %d values for n=%d in=%d", goldenPath, len(gd.X), len(gd.R), len(gd.Wt), gd.N, gd.In)
	}
	for _, set := range [][]goldenTensor{gd.Params, gd.Grads, gd.Adam.Params} {
		if len(set) != 2*(len(sizes)-1) {
			t.Fatalf("%s: %d parameter tensors, want %d", goldenPath, len(set), 2*(len(sizes)-1))
		}
		for i, p := range set {
			l := i / 2
			want := []int{sizes[l], sizes[l+1]}
			if i%2 == 1 {
				want = want[1:]
			}
			if !tensor.Shape(p.Shape).Eq(tensor.Shape(want)) || len(p.Data) != tensor.Shape(want).TotalSize() {
				t.Fatalf("%s: %s has shape %v with %d values, want %v", goldenPath, p.Name, p.Shape, len(p.Data), want)
			}
		}
	}
	if len(gd.Adam.Losses) != gd.Adam.Steps {
		t.Fatalf("%s: %d Adam losses for %d steps", goldenPath, len(gd.Adam.Losses), gd.Adam.Steps)
	}
	return &gd
}

func (gd *golden) sizes() []int {
	return append(append([]int{gd.In}, gd.Hidden...), gd.Out)
}

func (gd *golden) paramData() [][]float64 {
	p := make([][]float64, len(gd.Params))
	for i, t := range gd.Params {
		p[i] = t.Data
	}
	return p
}

// The float64 graph built from this package's ops reproduces PyTorch
// autograd's loss and every parameter gradient.
func TestGoldenTorchGradients(t *testing.T) {
	const tol = 1e-10 // relative (absolute below 1e-8)
	gd := loadGolden(t)
	m := buildMLP(t, tensor.Float64, gd.N, gd.sizes(), gd.X, gd.R, gd.Wt, gd.paramData(), gd.BCEWeight)
	vm := G.NewTapeMachine(m.g)
	defer vm.Close()
	run(t, vm)

	lossErr := relErr(scalar(t, m.loss), gd.Loss, 1e-8)
	t.Logf("loss %.17g, torch %s %.17g: relative error %.3g", scalar(t, m.loss), gd.TorchVersion, gd.Loss, lossErr)
	if lossErr > tol {
		t.Errorf("loss differs from torch: %g", lossErr)
	}
	worst := 0.0
	for i, want := range gd.Grads {
		got := float64s(t, m.grads[i])
		e := 0.0
		for j := range want.Data {
			e = math.Max(e, relErr(got[j], want.Data[j], 1e-8))
		}
		t.Logf("d%s: max relative error %.3g over %d entries", want.Name, e, len(got))
		worst = math.Max(worst, e)
	}
	if worst > tol {
		t.Errorf("gradients differ from torch: max relative error %g > %g", worst, tol)
	}
}

// Five optim.Adam steps on the float32 graph land where five
// torch.optim.Adam steps in float64 do.
func TestGoldenTorchAdam(t *testing.T) {
	const (
		paramTol = 1e-5 // absolute, parameters are O(1) and move by O(1e-2)
		lossTol  = 1e-5 // relative
	)
	gd := loadGolden(t)
	m := buildMLP(t, tensor.Float32, gd.N, gd.sizes(), gd.X, gd.R, gd.Wt, gd.paramData(), gd.BCEWeight)
	vm := G.NewTapeMachine(m.g)
	defer vm.Close()

	sizes := make([]int, len(m.params))
	params := make([][]float32, len(m.params))
	for i, p := range m.params {
		params[i] = p.Value().Data().([]float32) // updated in place; the graph reads them
		sizes[i] = len(params[i])
	}
	opt := optim.NewAdam(gd.Adam.LR, sizes)
	opt.Beta1, opt.Beta2, opt.Eps = gd.Adam.Beta1, gd.Adam.Beta2, gd.Adam.Eps
	grads := make([][]float32, len(m.grads))
	worstLoss := 0.0
	for s := 0; s < gd.Adam.Steps; s++ {
		run(t, vm)
		worstLoss = math.Max(worstLoss, relErr(scalar(t, m.loss), gd.Adam.Losses[s], 1e-8))
		for i, gn := range m.grads {
			grads[i] = gn.Value().Data().([]float32)
		}
		opt.Step(params, grads)
	}
	if opt.Steps() != gd.Adam.Steps {
		t.Errorf("Steps() = %d, want %d", opt.Steps(), gd.Adam.Steps)
	}
	worst := 0.0
	for i, want := range gd.Adam.Params {
		for j, w := range want.Data {
			worst = math.Max(worst, math.Abs(float64(params[i][j])-w))
		}
	}
	t.Logf("after %d steps: max |param − torch| = %.3g; max relative loss error over the steps = %.3g", gd.Adam.Steps, worst, worstLoss)
	if worst > paramTol {
		t.Errorf("parameters differ from torch after %d Adam steps: %g > %g", gd.Adam.Steps, worst, paramTol)
	}
	if worstLoss > lossTol {
		t.Errorf("losses differ from torch during Adam: %g > %g", worstLoss, lossTol)
	}
}
