package cuda_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kairoscope/kairoscope/cuda"
	"github.com/kairoscope/kairoscope/cuda/emulator"
	"github.com/kairoscope/kairoscope/engine"
	"github.com/kairoscope/kairoscope/engine/dataset"
	"github.com/kairoscope/kairoscope/engine/model"
	"github.com/kairoscope/kairoscope/engine/ops"
	"github.com/kairoscope/kairoscope/schema"
)

// The tests' net: 2 hidden layers of 16, batch 32, small enough that the
// emulator runs an epoch in milliseconds.
var smallCfg = model.Config{Hidden: []int{16, 16}, LR: 1e-2, Batch: 32, BCEWeight: 0.5}

const (
	smallIn   = 8
	smallRows = 200 // 7 steps of 32, the last one padded (8 real rows)
)

// synthetic makes rows whose target is a noisy linear function of the
// inputs (as engine/model's tests do), with both signs of the target.
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

func newEmulator(t testing.TB, memCap int64) *emulator.Emulator {
	t.Helper()
	dev := emulator.New(emulator.Options{MemCap: memCap})
	t.Cleanup(func() { dev.Close() })
	return dev
}

func newExecutor(t testing.TB, dev cuda.Device, in int, cfg model.Config, seed uint64) *cuda.Executor {
	t.Helper()
	tr, err := cuda.NewTrainer(dev)(in, cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tr.(*cuda.Executor)
}

// closeness measures device values against the CPU's: the largest
// absolute difference, and that difference relative to the tensor's largest
// CPU magnitude (a norm-wise relative error, the measure float32 rounding
// bounds: an entry that is a sum of terms of both signs can be ~0 and carry
// the rounding of its terms).
func closeness(dev, cpu []float32) (maxAbs, rel float64) {
	var scale float64
	for i := range cpu {
		d := math.Abs(float64(dev[i]) - float64(cpu[i]))
		if math.IsNaN(d) {
			return math.Inf(1), math.Inf(1)
		}
		maxAbs = max(maxAbs, d)
		scale = max(scale, math.Abs(float64(cpu[i])))
	}
	if maxAbs == 0 {
		return 0, 0
	}
	return maxAbs, maxAbs / scale
}

func valueFloats(t *testing.T, v G.Value) []float32 {
	t.Helper()
	switch v := v.(type) {
	case *G.F32:
		return []float32{float32(*v)}
	case tensor.Tensor:
		if d, ok := v.Data().([]float32); ok {
			return d
		}
	}
	t.Fatalf("value %T is not float32", v)
	return nil
}

// fillBatch writes the batch (*model.Net).Epoch builds for the first step
// of an epoch whose order is perm: rows perm[0:batch], padding after.
func fillBatch(net *model.Net, x, y []float32, perm []int, in, batch int) {
	bx, br, bw := net.Batch()
	for k := 0; k < batch; k++ {
		if k < len(perm) {
			i := perm[k]
			copy(bx[k*in:(k+1)*in], x[i*in:(i+1)*in])
			br[k], bw[k] = y[i], 1
		} else {
			clear(bx[k*in : (k+1)*in])
			br[k], bw[k] = 0, 0
		}
	}
}

// Every node of the compiled program against Gorgonia's TapeMachine on the
// same batch: one training step on the device (an epoch of 27 rows: one
// batch of 32 with 5 padding rows), then the TapeMachine on the same graph
// and batch; every op node's device buffer (forward outputs, the loss,
// every gradient) must match the CPU value within 1e-5 relative (floor
// 1e-3·the tensor's largest entry), and after Adam's first step the
// parameters within 1e-5 relative.
func TestProgramMatchesTapeMachine(t *testing.T) {
	const rows = 27
	cfg := smallCfg
	net, err := model.New(smallIn, cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	dev := newEmulator(t, 0)
	e, err := cuda.Compile(dev, net, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	g := net.Graph()
	var nodes G.Nodes
	for _, n := range g.AllNodes() {
		if _, ok := n.Op().(ops.Op); ok {
			nodes = append(nodes, n)
		}
	}
	cpu := make([]G.Value, len(nodes))
	for i, n := range nodes {
		G.Read(n, &cpu[i])
	}
	tm := G.NewTapeMachine(g)
	defer tm.Close()

	x, y := synthetic(rows, smallIn, 3)
	if _, err := e.Epoch(context.Background(), x, y, rand.New(rand.NewPCG(5, 6))); err != nil {
		t.Fatal(err)
	}
	fillBatch(net, x, y, rand.New(rand.NewPCG(5, 6)).Perm(rows), smallIn, cfg.Batch)
	if err := tm.RunAll(); err != nil {
		t.Fatal(err)
	}

	// The gathered batch is exactly the host's.
	bx, br, bw := net.Batch()
	for name, want := range map[string][]float32{"x": bx, "r": br, "wt": bw} {
		got, err := e.NodeValue(g.ByName(name)[0])
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("batch input %s[%d]: device %v, host %v", name, i, got[i], want[i])
			}
		}
	}

	const tol = 1e-5
	kinds := map[ops.Kind]int{}
	var worstAbs, worstRel float64
	for i, n := range nodes {
		got, err := e.NodeValue(n)
		if err != nil {
			t.Fatal(err)
		}
		want := valueFloats(t, cpu[i])
		if len(got) != len(want) {
			t.Fatalf("%v: device has %d values, CPU %d", n, len(got), len(want))
		}
		abs, rel := closeness(got, want)
		worstAbs, worstRel = max(worstAbs, abs), max(worstRel, rel)
		if rel > tol {
			t.Errorf("%v: max relative difference %.3g (abs %.3g) > %g", n, rel, abs, tol)
		}
		kinds[n.Op().(ops.Op).Kind()]++
	}
	t.Logf("%d op nodes: max abs difference %.3g, max relative %.3g", len(nodes), worstAbs, worstRel)
	// 3 Dense, 5 MatMul (3 dw, 2 dx), 2 ActGrad, 3 ColSum, 1 ProbLoss,
	// 1 ProbLossGrad: every kind the executor compiles was compared.
	want := map[ops.Kind]int{ops.KindDense: 3, ops.KindMatMul: 5, ops.KindActGrad: 2, ops.KindColSum: 3,
		ops.KindProbLoss: 1, ops.KindProbLossGrad: 1}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("op kinds compared %v, want %v", kinds, want)
	}

	// Adam's first step: net.Step runs the CPU graph again on the same batch
	// and updates the host parameters.
	if _, err := net.Step(); err != nil {
		t.Fatal(err)
	}
	compareParams(t, snapshot(t, e), net.Params(), 1e-5)
}

func compareParams(t *testing.T, dev, cpu [][]float32, tol float64) (worst float64) {
	t.Helper()
	if len(dev) != len(cpu) {
		t.Fatalf("%d device parameters, %d on the CPU", len(dev), len(cpu))
	}
	for i := range cpu {
		abs, rel := closeness(dev[i], cpu[i])
		worst = max(worst, rel)
		if rel > tol {
			t.Errorf("parameter %d: max relative difference %.3g (abs %.3g) > %g", i, rel, abs, tol)
		}
	}
	t.Logf("parameters: max relative difference %.3g", worst)
	return worst
}

func relDiff(a, b float64) float64 { return math.Abs(a-b) / max(math.Abs(b), 1e-12) }

// Whole epochs on the emulator against (*model.Net).Epoch on the CPU, same
// seed, data and rng: 1 and 3 epochs of 7 steps each. Tolerances (measured
// here: about 4x below them): epoch statistics 2e-5 relative (the device
// sums in float32, the CPU in float64); parameters 2e-5 relative after 1
// epoch and 5e-5 after 3 (norm-wise: see closeness; Adam divides by
// sqrt(v), which carries the GEMMs' float32 rounding differences from step
// to step); Forward on the same parameters 1e-5.
func TestEpochsMatchCPU(t *testing.T) {
	x, y := synthetic(smallRows, smallIn, 1)
	net, err := model.New(smallIn, smallCfg, 11)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	e := newExecutor(t, newEmulator(t, 0), smallIn, smallCfg, 11)
	compareParams(t, snapshot(t, e), net.Params(), 0) // same initialisation, bit for bit

	cpuRng, devRng := rand.New(rand.NewPCG(2, 3)), rand.New(rand.NewPCG(2, 3))
	// traced returns a context whose EpochTrace records the steps in *steps.
	traced := func(steps *[]string) context.Context {
		return model.WithEpochTrace(context.Background(), &model.EpochTrace{StepDone: func(done, total int) {
			*steps = append(*steps, fmt.Sprintf("%d/%d", done, total))
		}})
	}
	for epoch := 1; epoch <= 3; epoch++ {
		var cpuSteps, devSteps []string
		want, err := net.Epoch(traced(&cpuSteps), x, y, cpuRng)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Epoch(traced(&devSteps), x, y, devRng)
		if err != nil {
			t.Fatal(err)
		}
		if got.Steps != want.Steps || got.Steps != 7 {
			t.Errorf("epoch %d: %d steps on the device, %d on the CPU, want 7", epoch, got.Steps, want.Steps)
		}
		if fmt.Sprint(devSteps) != fmt.Sprint(cpuSteps) || len(devSteps) != 7 || devSteps[6] != "7/7" {
			t.Errorf("epoch %d: traced steps %v on the device, %v on the CPU, want 1/7 … 7/7", epoch, devSteps, cpuSteps)
		}
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"Loss", got.Loss, want.Loss}, {"NLL", got.NLL, want.NLL}, {"BCE", got.BCE, want.BCE}, {"Brier", got.Brier, want.Brier}} {
			if d := relDiff(c.got, c.want); d > 2e-5 {
				t.Errorf("epoch %d %s: device %v, CPU %v (relative difference %.3g)", epoch, c.name, c.got, c.want, d)
			}
		}
		t.Logf("epoch %d: device %+v, CPU %+v", epoch, got, want)
		if epoch == 1 || epoch == 3 {
			compareParams(t, snapshot(t, e), net.Params(), map[int]float64{1: 2e-5, 3: 5e-5}[epoch])
		}
	}
	// The streams consumed the same draws.
	if a, b := cpuRng.Uint64(), devRng.Uint64(); a != b {
		t.Errorf("the rngs diverged: %d vs %d", a, b)
	}

	t.Run("Forward", func(t *testing.T) {
		must(t, e.Restore(snapshot(t, net))) // the CPU's parameters, so that only Forward's own rounding differs
		fx, _ := synthetic(50, smallIn, 9)
		want := make([]float32, 50*model.Outputs)
		got := make([]float32, 50*model.Outputs)
		must(t, net.Forward(want, fx, 50))
		must(t, e.Forward(got, fx, 50))
		abs, rel := closeness(got, want)
		if rel > 1e-5 {
			t.Errorf("Forward: max relative difference %.3g (abs %.3g)", rel, abs)
		}
		t.Logf("Forward of 50 rows: max relative difference %.3g (abs %.3g)", rel, abs)
		must(t, e.Forward(got[:9], fx, 3)) // fewer rows on the same buffers
		must(t, net.Forward(want[:9], fx, 3))
		if abs, rel := closeness(got[:9], want[:9]); rel > 1e-5 {
			t.Errorf("Forward of 3 rows: max relative difference %.3g (abs %.3g)", rel, abs)
		}
	})

	t.Run("Snapshot/Restore", func(t *testing.T) {
		s := snapshot(t, e)
		if _, err := e.Epoch(context.Background(), x, y, devRng); err != nil {
			t.Fatal(err)
		}
		if moved := snapshot(t, e); moved[0][0] == s[0][0] {
			t.Fatal("an epoch left w1 unchanged")
		}
		must(t, e.Restore(s))
		compareParams(t, snapshot(t, e), s, 0)
		if err := e.Restore(s[:len(s)-1]); err == nil {
			t.Error("Restore of a snapshot with a parameter missing did not fail")
		}
	})
}

// recorder logs every call a Device gets, in order.
type recorder struct {
	cuda.Device
	calls []string
}

func (r *recorder) CopyIn(dst cuda.Ptr, src []float32) error {
	r.calls = append(r.calls, "CopyIn")
	return r.Device.CopyIn(dst, src)
}

func (r *recorder) CopyInInt32(dst cuda.Ptr, src []int32) error {
	r.calls = append(r.calls, "CopyInInt32")
	return r.Device.CopyInInt32(dst, src)
}

func (r *recorder) CopyOut(dst []float32, src cuda.Ptr) error {
	r.calls = append(r.calls, "CopyOut")
	return r.Device.CopyOut(dst, src)
}

func (r *recorder) Synchronize() error {
	r.calls = append(r.calls, "Synchronize")
	return r.Device.Synchronize()
}

func (r *recorder) Launch(name string, grid, block cuda.Dim, args ...cuda.Arg) error {
	r.calls = append(r.calls, name)
	return r.Device.Launch(name, grid, block, args...)
}

func (r *recorder) Sgemm(transA, transB bool, m, n, k int, alpha float32, a cuda.Ptr, lda int, b cuda.Ptr, ldb int,
	beta float32, c cuda.Ptr, ldc int) error {
	r.calls = append(r.calls, "sgemm")
	return r.Device.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// The cost of a training step, from the emulator's counters. For the
// 2-hidden-layer net (3 dense layers, 6 parameters) one step is 23 device
// ops, 15 launches and 8 GEMMs:
//
//	gather_rows 1, gather_targets 1         the batch, from the fold's data on the device
//	sgemm 3 + bias_act 3                    forward
//	fill 1 + prob_loss 1                    the loss's five sums
//	prob_loss_grad 1                        dL/d(output)
//	sgemm 5 (3 dW, 2 dX), relu_grad 2,      backward
//	col_sum 3
//	adam_update 1                           every parameter: they lie in one slab
//	add_into 1                              the step's sums into the epoch's
//
// An epoch adds one fill (the epoch's sums), one copy in of the row order
// and one copy out of the 5 sums at its end: its only host sync. The data
// is copied in on the first epoch only.
func TestCountersPerStep(t *testing.T) {
	perStep := map[string]int{"gather_rows": 1, "gather_targets": 1, "bias_act": 3, "fill": 1, "prob_loss": 1,
		"prob_loss_grad": 1, "relu_grad": 2, "col_sum": 3, "adam_update": 1, "add_into": 1}
	const gemmsPerStep, steps = 8, 7

	dev := newEmulator(t, 0)
	rec := &recorder{Device: dev}
	e := newExecutor(t, rec, smallIn, smallCfg, 1)

	// Steps lists exactly one step's device ops.
	listed := map[string]int{}
	for _, line := range e.Steps() {
		listed[strings.Fields(line)[0]]++
	}
	if listed["sgemm"] != gemmsPerStep {
		t.Errorf("Steps lists %d sgemm, want %d", listed["sgemm"], gemmsPerStep)
	}
	delete(listed, "sgemm")
	if fmt.Sprint(listed) != fmt.Sprint(perStep) {
		t.Errorf("Steps lists launches %v, want %v", listed, perStep)
	}

	x, y := synthetic(smallRows, smallIn, 1)
	rng := rand.New(rand.NewPCG(1, 1))
	xBytes, yBytes := int64(len(x)*4), int64(len(y)*4)
	permBytes := int64(smallRows * 4)
	for epoch := 1; epoch <= 2; epoch++ {
		dev.ResetCounters()
		rec.calls = nil
		st, err := e.Epoch(context.Background(), x, y, rng)
		if err != nil {
			t.Fatal(err)
		}
		if st.Steps != steps {
			t.Fatalf("%d steps, want %d", st.Steps, steps)
		}
		c := dev.Counters()
		for k, n := range perStep {
			want := n * steps
			if k == "fill" {
				want++ // the epoch's sums
			}
			if c.Launches[k] != want {
				t.Errorf("epoch %d: %d launches of %s, want %d", epoch, c.Launches[k], k, want)
			}
		}
		if len(c.Launches) != len(perStep) || c.Gemms != gemmsPerStep*steps {
			t.Errorf("epoch %d: launches %v, %d GEMMs, want the kernels of %v and %d GEMMs", epoch, c.Launches, c.Gemms, perStep, gemmsPerStep*steps)
		}
		wantHtoD := permBytes
		if epoch == 1 {
			wantHtoD += xBytes + yBytes // once per fold
		}
		if c.BytesHtoD != wantHtoD || c.BytesDtoH != 5*4 || c.HostSyncs != 1 {
			t.Errorf("epoch %d: %d bytes in (want %d), %d out (want 20), %d host syncs (want 1)",
				epoch, c.BytesHtoD, wantHtoD, c.BytesDtoH, c.HostSyncs)
		}
		// The one sync is the epoch's last call.
		for i, call := range rec.calls {
			if (call == "CopyOut" || call == "Synchronize") && i != len(rec.calls)-1 {
				t.Errorf("epoch %d: host sync %s at call %d of %d", epoch, call, i+1, len(rec.calls))
			}
		}
		if rec.calls[len(rec.calls)-1] != "CopyOut" {
			t.Errorf("epoch %d ends with %s, not the copy out of its sums", epoch, rec.calls[len(rec.calls)-1])
		}
		t.Logf("epoch %d: %+v", epoch, c)
	}

	// Forward: one copy each way and the forward layers only.
	dev.ResetCounters()
	out := make([]float32, 50*model.Outputs)
	must(t, e.Forward(out, x, 50))
	c := dev.Counters()
	if c.Gemms != 3 || c.Launches["bias_act"] != 3 || len(c.Launches) != 1 || c.HostSyncs != 1 ||
		c.BytesHtoD != 50*smallIn*4 || c.BytesDtoH != 50*3*4 {
		t.Errorf("Forward of 50 rows: %+v", c)
	}
}

// snapshot is tr's Snapshot, which must not fail.
func snapshot(t testing.TB, tr model.Trainer) [][]float32 {
	t.Helper()
	s, err := tr.Snapshot()
	must(t, err)
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func checkOOM(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, cuda.ErrOutOfMemory) {
		t.Fatalf("error %v is not ErrOutOfMemory", err)
	}
	if !strings.HasPrefix(err.Error(), "CUDA out of memory") {
		t.Errorf("error %q does not start with CUDA out of memory", err)
	}
	var me *cuda.MemError
	if !errors.As(err, &me) || me.Requested <= 0 || me.Total <= 0 || me.Free < 0 || me.Free >= me.Requested {
		t.Errorf("error %v: MemError %+v", err, me)
	}
	if !strings.Contains(err.Error(), " free of ") {
		t.Errorf("error %q does not state free/total", err)
	}
}

// Out of memory: a device too small for the model fails NewTrainer, one
// too small for the fold's data fails the first Epoch; both say "CUDA out
// of memory" first, with the bytes asked for and free/total, and leak
// nothing.
func TestOutOfMemory(t *testing.T) {
	t.Run("model", func(t *testing.T) {
		dev := newEmulator(t, 4<<10)
		_, err := cuda.NewTrainer(dev)(smallIn, smallCfg, 1)
		checkOOM(t, err)
		if c := dev.Counters(); c.LiveBytes != 0 {
			t.Errorf("%d bytes left allocated after the failed NewTrainer", c.LiveBytes)
		}
		t.Log(err)
	})
	t.Run("data", func(t *testing.T) {
		probe := newEmulator(t, 0)
		newExecutor(t, probe, smallIn, smallCfg, 1)
		need := probe.Counters().LiveBytes
		x, y := synthetic(smallRows, smallIn, 1)
		dev := newEmulator(t, need+int64(len(x)*4)/2) // the model fits, the data does not
		e := newExecutor(t, dev, smallIn, smallCfg, 1)
		_, err := e.Epoch(context.Background(), x, y, rand.New(rand.NewPCG(1, 1)))
		checkOOM(t, err)
		if !strings.Contains(err.Error(), "training data") {
			t.Errorf("error %q does not say what was being allocated", err)
		}
		if c := dev.Counters(); c.LiveBytes != need {
			t.Errorf("%d bytes allocated after the failed upload, want the model's %d", c.LiveBytes, need)
		}
		t.Log(err)
	})
}

// An op without a device implementation is an ErrNotImplemented error
// naming it, never a silent CPU fallback.
func TestUnknownOpIsNotImplemented(t *testing.T) {
	net, err := model.New(smallIn, smallCfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	g := net.Graph()
	w := g.ByName("w1")[0]
	if _, err := G.Square(w); err != nil { // an extra Gorgonia op in the graph
		t.Fatal(err)
	}
	dev := newEmulator(t, 0)
	_, err = cuda.Compile(dev, net, smallCfg)
	if !errors.Is(err, cuda.ErrNotImplemented) || !strings.Contains(err.Error(), "square") {
		t.Fatalf("err = %v", err)
	}
	if c := dev.Counters(); c.LiveBytes != 0 {
		t.Errorf("%d bytes left allocated", c.LiveBytes)
	}
}

func TestEpochCancels(t *testing.T) {
	e := newExecutor(t, newEmulator(t, 0), smallIn, smallCfg, 1)
	x, y := synthetic(smallRows, smallIn, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Epoch(ctx, x, y, rand.New(rand.NewPCG(1, 1))); err != context.Canceled {
		t.Errorf("err = %v", err)
	}
}

// The engine trains through the device path end to end: engine.Train on
// the bike data (2 folds, 2 epochs, one-step targets) with the executor on
// the emulator gives fold metrics within 1e-4 relative of the CPU run's
// (AUC, DirAcc and coverage within 0.01: one rank or one row may flip).
func TestEngineTrainsOnTheDevice(t *testing.T) {
	s, err := dataset.Load("../datasets/bike.csv", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.Defaults()
	cfg.Folds, cfg.Epochs, cfg.Horizons = 2, 2, 1
	cfg.Model.Hidden, cfg.Model.Batch = []int{16, 16}, 64
	run := func(trainer model.NewTrainer) *engine.Summary {
		c := cfg
		c.Reports, c.Trainer = t.TempDir(), trainer
		sum, err := engine.Train(context.Background(), s, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	cpu := run(nil)
	dev := newEmulator(t, 0)
	gpu := run(cuda.NewTrainer(dev))
	if dev.Counters().Launches["adam_update"] == 0 {
		t.Fatal("the engine did not train on the device")
	}
	if len(gpu.Folds) != 2 || len(cpu.Folds) != 2 {
		t.Fatalf("%d folds on the device, %d on the CPU", len(gpu.Folds), len(cpu.Folds))
	}
	for i := range cpu.Folds {
		g, c := gpu.Folds[i].Metrics, cpu.Folds[i].Metrics
		for _, m := range []struct {
			name      string
			got, want float64
			abs       bool
		}{
			{"train_loss", float64(g.TrainLoss), float64(c.TrainLoss), false},
			{"val_loss", float64(g.ValLoss), float64(c.ValLoss), false},
			{"val_nll", float64(g.ValNLL), float64(c.ValNLL), false},
			{"val_brier", float64(g.ValBrier), float64(c.ValBrier), false},
			{"conformal_width", float64(g.ConformalWidth), float64(c.ConformalWidth), false},
			{"val_auc", float64(g.ValAUC), float64(c.ValAUC), true},
			{"DirAcc", float64(g.DirAcc), float64(c.DirAcc), true},
			{"conformal_coverage", float64(g.ConformalCoverage), float64(c.ConformalCoverage), true},
		} {
			d := relDiff(m.got, m.want)
			tol := 1e-4
			if m.abs {
				d, tol = math.Abs(m.got-m.want), 0.01
			}
			if d > tol || math.IsNaN(m.got) {
				t.Errorf("fold %d %s: device %v, CPU %v", i, m.name, m.got, m.want)
			}
		}
		t.Logf("fold %d: device val_loss %v train_loss %v; CPU %v %v", i, g.ValLoss, g.TrainLoss, c.ValLoss, c.TrainLoss)
	}

	t.Run("out of memory", func(t *testing.T) {
		c := cfg
		c.Reports, c.Trainer = t.TempDir(), cuda.NewTrainer(newEmulator(t, 64<<10))
		var last any
		_, err := engine.Train(context.Background(), s, c, func(m any) { last = m })
		if !errors.Is(err, cuda.ErrOutOfMemory) {
			t.Fatalf("err = %v", err)
		}
		// What a client of the training schema sees.
		te, ok := last.(*schema.TrainingError)
		if !ok || !strings.HasPrefix(te.Error, "CUDA out of memory: alloc of ") || !strings.Contains(te.Error, " free of ") {
			t.Fatalf("last message %#v", last)
		}
		t.Log(te.Error)
	})
}

// With OOMRetries a fold that runs out of device memory starts again with
// half the batch and the run completes, saying so in an oom_retry
// notification; without, it ends in out of memory. The memory cap lies
// between the peaks of the two batch sizes, measured first.
func TestEngineHalvesTheBatchOnOutOfMemory(t *testing.T) {
	s, err := dataset.Load("../datasets/bike.csv", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.Defaults()
	cfg.Folds, cfg.Epochs, cfg.Horizons = 2, 1, 1
	cfg.Model.Hidden, cfg.Model.Batch = []int{128, 128}, 256
	peak := func(batch int) int64 {
		c := cfg
		dev := newEmulator(t, 0)
		c.Reports, c.Trainer, c.Model.Batch = t.TempDir(), cuda.NewTrainer(dev), batch
		if _, err := engine.Train(context.Background(), s, c, nil); err != nil {
			t.Fatal(err)
		}
		return dev.Counters().PeakBytes
	}
	full, half := peak(256), peak(128)
	if full <= half {
		t.Fatalf("peak device memory %d B at batch 256, %d B at 128: the batch does not matter", full, half)
	}
	memCap := (full + half) / 2
	t.Logf("peak %d B at batch 256, %d B at 128: cap %d B", full, half, memCap)

	train := func(retries int) (*engine.Summary, []any, error) {
		c := cfg
		c.Reports, c.Trainer, c.OOMRetries = t.TempDir(), cuda.NewTrainer(newEmulator(t, memCap)), retries
		var msgs []any
		sum, err := engine.Train(context.Background(), s, c, func(m any) { msgs = append(msgs, m) })
		return sum, msgs, err
	}
	if _, _, err := train(0); !errors.Is(err, cuda.ErrOutOfMemory) {
		t.Fatalf("without retries: err = %v, want out of memory", err)
	}
	sum, msgs, err := train(3)
	if err != nil {
		t.Fatalf("with retries: %v", err)
	}
	var notes []*schema.Notification
	for _, m := range msgs {
		if n, ok := m.(*schema.Notification); ok && n.Kind == schema.KindOOMRetry {
			notes = append(notes, n)
		}
	}
	if len(notes) != 1 || *notes[0].FoldID != 0 || !strings.HasPrefix(notes[0].Message, "CUDA out of memory") ||
		!strings.Contains(notes[0].Message, "batch size 128 instead of 256 (retry 1 of 3)") {
		t.Fatalf("oom_retry notifications: %+v, want one for fold 0 halving 256 to 128", notes)
	}
	t.Log(notes[0].Message)
	for _, f := range sum.Folds {
		if f.BatchSize != 128 {
			t.Errorf("fold %d trained with batch %d, want 128 (later folds keep the smaller batch)", f.FoldID, f.BatchSize)
		}
	}
}

// A device error in Forward is returned, and every later call, Close
// included, returns that first error: the engine gets it from the call that
// failed, not later.
func TestForwardErrorIsReturnedAndKept(t *testing.T) {
	// Room for what training holds, measured on a first device, but not
	// for Forward's buffers of many rows.
	held := newEmulator(t, 0)
	newExecutor(t, held, smallIn, smallCfg, 1)
	dev := newEmulator(t, held.Counters().LiveBytes+4<<10)
	tr, err := cuda.NewTrainer(dev)(smallIn, smallCfg, 1)
	must(t, err)
	const rows = 4000
	x, _ := synthetic(rows, smallIn, 1)
	err = tr.Forward(make([]float32, rows*model.Outputs), x, rows)
	checkOOM(t, err)
	if _, err2 := tr.Snapshot(); err2 != err {
		t.Errorf("Snapshot after the failure: %v, want the first error", err2)
	}
	if err2 := tr.Close(); !errors.Is(err2, cuda.ErrOutOfMemory) {
		t.Errorf("Close after the failure: %v, want the first error", err2)
	}
}

// With Config.EpochRows an epoch trains on the first EpochRows of its
// shuffled order, on the device as on the CPU: the same steps (3 of 32, the
// last one padded), statistics and parameters, and the same draws consumed.
func TestCappedEpochsMatchCPU(t *testing.T) {
	cfg := smallCfg
	cfg.EpochRows = 2*cfg.Batch + 5
	x, y := synthetic(smallRows, smallIn, 1)
	net, err := model.New(smallIn, cfg, 11)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	e := newExecutor(t, newEmulator(t, 0), smallIn, cfg, 11)
	cpuRng, devRng := rand.New(rand.NewPCG(2, 3)), rand.New(rand.NewPCG(2, 3))
	for epoch := 1; epoch <= 2; epoch++ {
		want, err := net.Epoch(context.Background(), x, y, cpuRng)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Epoch(context.Background(), x, y, devRng)
		if err != nil {
			t.Fatal(err)
		}
		if got.Steps != 3 || want.Steps != 3 {
			t.Errorf("epoch %d: %d steps on the device, %d on the CPU, want 3", epoch, got.Steps, want.Steps)
		}
		if d := relDiff(got.Loss, want.Loss); d > 2e-5 {
			t.Errorf("epoch %d loss: device %v, CPU %v", epoch, got.Loss, want.Loss)
		}
	}
	compareParams(t, snapshot(t, e), net.Params(), 5e-5)
	if a, b := cpuRng.Uint64(), devRng.Uint64(); a != b {
		t.Errorf("the rngs diverged: %d vs %d", a, b)
	}
}
