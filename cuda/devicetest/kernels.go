package devicetest

import (
	"math"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kairoscope/kairoscope/engine/ops"
	"github.com/kairoscope/kairoscope/engine/optim"
)

// The kernels: every kernel of kernels.cu, run through a cuda.Device on
// fresh random inputs, against the engine's own CPU code (engine/ops,
// engine/optim) where it exists, and a direct Go transcription of the
// kernel's formula where the engine has none (the gathers, fill, add_into).
//
// Tolerances (u = 2^-24, float32's unit roundoff):
//   - bias_act, relu_grad, col_sum, gather_rows, gather_targets, fill,
//     add_into: bit for bit (one float32 add or a copy per element; col_sum
//     adds the rows in the engine's order);
//   - dense forward (Sgemm + bias_act): within the float32 dot-product bound
//     2·(k+2)·u·(Σ|x||w| + |b|) of ops.DenseForward;
//   - prob_loss: each of the five sums within 1e-5·Σ|terms| of the float64
//     sums of ops.RowLoss / ops.Sigmoid, and the loss acc[0]/acc[1] within
//     1e-5 (relative) of ops.ProbLossOp;
//   - prob_loss_grad: each entry within 1e-5·(the sum of the magnitudes of
//     the terms it subtracts) of ops.ProbLossGradOp; padding rows exactly 0;
//   - adam_update: after 50 steps (lr 1e-3, gradients from 1e-2 to 1e2) the
//     parameters within 1e-6·max(1, |w|) of optim.Adam.Step, a few ulps; the
//     kernel forms 1−β in float32 where optim rounds it from float64 (a
//     3-ulp difference in the coefficient).
func identity(n int) []float32 {
	x := make([]float32, n*n)
	for i := range n {
		x[i*n+i] = 1
	}
	return x
}

// bias_act equals the epilogue of ops.DenseForward bit for bit: with x the
// identity, DenseForward's GEMM returns its w exactly, so dst = act(w + b).
func testBiasAct(t *testing.T, d Dev) {
	r := NewRand(t)
	const rows, cols = 100, 64
	z, b := Randn(r, rows*cols, 1), Randn(r, cols, 0.5)
	for i := range z {
		if r.IntN(10) == 0 {
			z[i] = 0
		}
	}
	for _, act := range []ops.Activation{ops.Identity, ops.ReLU} {
		want := make([]float32, rows*cols)
		ops.DenseForward(want, identity(rows), z, b, rows, rows, cols, act)
		relu := 0
		if act == ops.ReLU {
			relu = 1
		}
		bp := d.Upload(b)
		for _, gb := range launchConfigs(rows * cols) {
			y := d.Upload(z)
			d.Launch("bias_act", gb[0], gb[1], y, bp, rows, cols, relu)
			SameBits(t, act.String(), d.Download(y, rows*cols), want)
		}
	}
}

// ReLU keeps NaN and maps −0 to +0, as the engine's max(z, 0) does.
func testBiasActEdges(t *testing.T, d Dev) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	negz := float32(math.Copysign(0, -1))
	z := []float32{negz, 0, nan, -1, 1, -inf, inf, negz}
	b := []float32{negz, negz, 0, 0.5, -2, 1, 0, 0}
	for relu := range 2 {
		want := make([]float32, len(z))
		for i := range z {
			want[i] = z[i] + b[i]
			if relu == 1 {
				want[i] = max(want[i], 0) // ops.biasAct's expression
			}
		}
		y := d.Upload(z)
		d.Launch("bias_act", 1, 64, y, d.Upload(b), int32(1), int32(len(z)), int32(relu))
		SameBits(t, "edges", d.Download(y, len(z)), want)
	}
}

// Sgemm (row-major through the operand swap) + bias_act is ops.DenseForward.
func testDenseForward(t *testing.T, d Dev) {
	r := NewRand(t)
	const n, in, out = 256, 40, 64
	x, w, b := Randn(r, n*in, 1), Randn(r, in*out, 0.3), Randn(r, out, 0.1)
	want := make([]float32, n*out)
	ops.DenseForward(want, x, w, b, n, in, out, ops.ReLU)
	y := d.Alloc(n * out)
	d.Sgemm(false, false, out, n, in, 1, d.Upload(w), out, d.Upload(x), in, 0, y, out)
	d.Launch("bias_act", (n*out+127)/128, 128, y, d.Upload(b), n, out, 1)
	worst := within(t, "dense", d.Download(y, n*out), f64s(want), func(i int) float64 {
		row, col := i/out, i%out
		s := math.Abs(float64(b[col]))
		for l := range in {
			s += math.Abs(float64(x[row*in+l]) * float64(w[l*out+col]))
		}
		return 2 * (in + 2) * u * s
	})
	t.Logf("dense forward %d×%d×%d: worst |diff|/tolerance %.3f", n, in, out, worst)
}

// engineReluGrad returns the ActGradOp that ops.Dense's gradient uses for
// ReLU (its parameter is unexported, so take it from a graph).
func engineReluGrad(t *testing.T) ops.ActGradOp {
	g := gorgonia.NewGraph()
	x := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(2, 3), gorgonia.WithName("x"))
	w := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(3, 4), gorgonia.WithName("w"))
	b := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(4), gorgonia.WithName("b"))
	y, err := ops.Dense(x, w, b, ops.ReLU)
	if err != nil {
		t.Fatal(err)
	}
	cost, err := gorgonia.Sum(y)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gorgonia.Grad(cost, w); err != nil {
		t.Fatal(err)
	}
	for _, n := range g.AllNodes() {
		if op, ok := n.Op().(ops.ActGradOp); ok && op.Activation() == ops.ReLU {
			return op
		}
	}
	t.Fatal("no ReLU ActGradOp in the gradient graph")
	return ops.ActGradOp{}
}

func testReluGrad(t *testing.T, d Dev) {
	r := NewRand(t)
	const rows, cols = 90, 33
	const n = rows * cols
	dy, y := Randn(r, n, 1), Randn(r, n, 1)
	for i := range y {
		switch r.IntN(4) {
		case 0:
			y[i] = 0
		case 1:
			y[i] = float32(math.Copysign(0, -1))
		}
	}
	res, err := engineReluGrad(t).Do(tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(dy)),
		tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(y)))
	if err != nil {
		t.Fatal(err)
	}
	want := res.(*tensor.Dense).Float32s()
	yp := d.Upload(y)
	for _, gb := range launchConfigs(n) {
		dz := d.Alloc(n)
		d.Launch("relu_grad", gb[0], gb[1], dz, d.Upload(dy), yp, n)
		SameBits(t, "dz", d.Download(dz, n), want)
		// In place, dz = dy.
		dyp := d.Upload(dy)
		d.Launch("relu_grad", gb[0], gb[1], dyp, dyp, yp, n)
		SameBits(t, "dz in place", d.Download(dyp, n), want)
	}
}

// col_sum equals ops.ColSumOp bit for bit: both add the rows in order.
func testColSum(t *testing.T, d Dev) {
	r := NewRand(t)
	const rows, cols = 300, 40
	x := Randn(r, rows*cols, 1)
	res, err := ops.ColSumOp{}.Do(tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(x)))
	if err != nil {
		t.Fatal(err)
	}
	want := res.(*tensor.Dense).Float32s()
	xp := d.Upload(x)
	for _, gb := range [][2]int{{1, 16}, {1, 64}, {2, 64}} {
		out := d.Alloc(cols)
		d.Launch("col_sum", gb[0], gb[1], out, xp, rows, cols)
		SameBits(t, "col_sum", d.Download(out, cols), want)
	}
}

// engineProbLoss returns the engine's loss op and gradient op for bceW.
func engineProbLoss(t *testing.T, bceW float64) (ops.ProbLossOp, ops.ProbLossGradOp) {
	g := gorgonia.NewGraph()
	out := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(4, 3), gorgonia.WithName("out"))
	r := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(4), gorgonia.WithName("r"))
	wt := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(4), gorgonia.WithName("wt"))
	loss, err := ops.ProbLoss(out, r, wt, bceW)
	if err != nil {
		t.Fatal(err)
	}
	op := loss.Op().(ops.ProbLossOp)
	return op, ops.ProbLossGradOp(op)
}

// lossBatch is a random minibatch for prob_loss: a quarter of the rows are
// padding (weight 0) and hold NaN, which must change nothing.
type lossBatch struct {
	n           int
	out, r, wt  []float32
	bceW, gUp   float32
	outT, rT    *tensor.Dense
	wtT         *tensor.Dense
	nanInPadded int
}

func newLossBatch(t *testing.T, n int) *lossBatch {
	rnd := NewRand(t)
	b := &lossBatch{n: n, out: make([]float32, 3*n), r: make([]float32, n), wt: make([]float32, n),
		bceW: 0.5, gUp: 0.75}
	for i := range n {
		b.out[3*i] = float32(rnd.NormFloat64() * 0.5)
		b.out[3*i+1] = float32(rnd.NormFloat64() * 2)
		b.out[3*i+2] = float32(rnd.NormFloat64() * 3)
		if rnd.IntN(3) > 0 {
			b.r[i] = float32(rnd.NormFloat64())
		}
		if rnd.IntN(4) > 0 {
			b.wt[i] = float32(0.5 + rnd.Float64())
		} else if rnd.IntN(2) == 0 {
			nan := float32(math.NaN())
			b.out[3*i], b.out[3*i+1], b.out[3*i+2], b.r[i] = nan, nan, nan, nan
			b.nanInPadded++
		}
	}
	if b.nanInPadded == 0 {
		t.Fatal("the batch has no NaN padding rows")
	}
	b.outT = tensor.New(tensor.WithShape(n, 3), tensor.WithBacking(b.out))
	b.rT = tensor.New(tensor.WithShape(n), tensor.WithBacking(b.r))
	b.wtT = tensor.New(tensor.WithShape(n), tensor.WithBacking(b.wt))
	return b
}

// sums returns the five float64 sums prob_loss accumulates and, for the
// tolerances, the sums of the magnitudes of their terms.
func (b *lossBatch) sums() (s, mag [5]float64) {
	bw := float64(b.bceW)
	for i := range b.n {
		w := float64(b.wt[i])
		if w == 0 {
			continue
		}
		nll, bce := ops.RowLoss(float64(b.out[3*i]), float64(b.out[3*i+1]), float64(b.out[3*i+2]), float64(b.r[i]))
		y := 0.0
		if b.r[i] > 0 {
			y = 1
		}
		e := ops.Sigmoid(float64(b.out[3*i+2])) - y
		terms := [5]float64{w * (nll + bw*bce), w, w * nll, w * bce, w * e * e}
		for k, v := range terms {
			s[k] += v
			mag[k] += math.Abs(v)
		}
		mag[0] += w * bw * math.Abs(bce) // the terms of nll + bce_w·bce
	}
	return s, mag
}

func testProbLoss(t *testing.T, d Dev) {
	const n = 1000
	b := newLossBatch(t, n)
	lossOp, gradOp := engineProbLoss(t, float64(b.bceW))
	want, mag := b.sums()
	lv, err := lossOp.Do(b.outT, b.rT, b.wtT)
	if err != nil {
		t.Fatal(err)
	}
	wantLoss := float64(*(lv.(*gorgonia.F32)))
	gv, err := gradOp.Do(b.outT, b.rT, b.wtT, gorgonia.NewF32(b.gUp))
	if err != nil {
		t.Fatal(err)
	}
	wantGrad := f64s(gv.(*tensor.Dense).Float32s())
	gradTol := b.gradTolerances()

	outP, rP, wtP := d.Upload(b.out), d.Upload(b.r), d.Upload(b.wt)
	for _, gb := range launchConfigs(n) {
		acc := d.Alloc(5)
		d.Launch("fill", 1, 64, acc, float32(0), 5)
		d.Launch("prob_loss", gb[0], gb[1], acc, outP, rP, wtP, n, b.bceW)
		got := d.Download(acc, 5)
		worst := within(t, "acc", got, want[:], func(k int) float64 { return 1e-5 * mag[k] })
		loss := float64(got[0]) / float64(got[1])
		if math.Abs(loss-wantLoss) > 1e-5*math.Abs(wantLoss) {
			t.Fatalf("loss acc[0]/acc[1] = %v, ops.ProbLossOp = %v", loss, wantLoss)
		}
		dP := d.Alloc(3 * n)
		d.Launch("prob_loss_grad", gb[0], gb[1], dP, outP, rP, wtP, acc, n, b.bceW, b.gUp)
		grad := d.Download(dP, 3*n)
		gworst := within(t, "d", grad, wantGrad, func(i int) float64 { return gradTol[i] })
		for i := range n {
			if b.wt[i] == 0 {
				SameBits(t, "padding row of d", grad[3*i:3*i+3], []float32{0, 0, 0})
			}
		}
		t.Logf("grid %d block %d: loss %.7g (engine %.7g), worst |diff|/tolerance: acc %.3f, d %.3f",
			gb[0], gb[1], loss, wantLoss, worst, gworst)
	}
	// Launches add into acc: a second launch doubles it.
	acc := d.Alloc(5)
	d.Launch("fill", 1, 64, acc, float32(0), 5)
	d.Launch("prob_loss", 2, 128, acc, outP, rP, wtP, n, b.bceW)
	d.Launch("prob_loss", 3, 64, acc, outP, rP, wtP, n, b.bceW)
	within(t, "acc after two launches", d.Download(acc, 5), []float64{2 * want[0], 2 * want[1], 2 * want[2], 2 * want[3], 2 * want[4]},
		func(k int) float64 { return 2e-5 * mag[k] })
}

// gradTolerances returns 1e-5 times the magnitude of the terms of each
// gradient entry (see ops.ProbLossGradOp), so that cancellation is allowed
// for.
func (b *lossBatch) gradTolerances() []float64 {
	var sumW float64
	for _, w := range b.wt {
		sumW += float64(w)
	}
	tol := make([]float64, 3*b.n)
	for i := range b.n {
		w := float64(b.wt[i])
		if w == 0 {
			continue
		}
		c := math.Abs(float64(b.gUp)) * w / sumW
		mu, s, l, r := float64(b.out[3*i]), float64(b.out[3*i+1]), float64(b.out[3*i+2]), float64(b.r[i])
		inv := 1 / (ops.Softplus(s) + ops.SigmaEps)
		e := (r - mu) * inv
		y := 0.0
		if r > 0 {
			y = 1
		}
		tol[3*i] = 1e-5 * c * math.Abs(e) * inv
		tol[3*i+1] = 1e-5 * c * (inv + e*e*inv) * ops.Sigmoid(s)
		tol[3*i+2] = 1e-5 * c * float64(b.bceW) * (ops.Sigmoid(l) + y)
	}
	return tol
}

// All weights 0: every sum and every gradient is exactly 0, even with NaN
// rows and W = acc[1] = 0.
func testProbLossZeroWeights(t *testing.T, d Dev) {
	const n = 64
	b := newLossBatch(t, n)
	clear(b.wt)
	acc := d.Alloc(5)
	d.Launch("fill", 1, 64, acc, float32(0), 5)
	outP, rP, wtP := d.Upload(b.out), d.Upload(b.r), d.Upload(b.wt)
	d.Launch("prob_loss", 1, 64, acc, outP, rP, wtP, n, b.bceW)
	SameBits(t, "acc", d.Download(acc, 5), make([]float32, 5))
	dP := d.Alloc(3 * n)
	d.Launch("prob_loss_grad", 1, 64, dP, outP, rP, wtP, acc, n, b.bceW, b.gUp)
	SameBits(t, "d", d.Download(dP, 3*n), make([]float32, 3*n))
}

// adam_update with optim.Adam's StepScalars follows optim.Adam.Step.
func testAdam(t *testing.T, d Dev) {
	r := NewRand(t)
	const n, steps = 1000, 50
	w0 := Randn(r, n, 1)
	opt := optim.NewAdam(1e-3, []int{n})
	wCPU := append([]float32(nil), w0...)
	wP, gP, mP, vP := d.Upload(w0), d.Alloc(n), d.Alloc(n), d.Alloc(n)
	d.Launch("fill", 4, 128, mP, float32(0), n)
	d.Launch("fill", 4, 128, vP, float32(0), n)
	for step := 1; step <= steps; step++ {
		g := Randn(r, n, math.Pow(10, float64(r.IntN(5)-2)))
		for i := range g {
			if r.IntN(10) == 0 {
				g[i] = 0
			}
		}
		opt.Step([][]float32{wCPU}, [][]float32{g})
		stepSize, bc2Sqrt := opt.StepScalars(step)
		if err := d.d.CopyIn(gP, g); err != nil {
			t.Fatal(err)
		}
		gb := launchConfigs(n)[step%3]
		d.Launch("adam_update", gb[0], gb[1], wP, gP, mP, vP, float32(stepSize), float32(opt.Beta1),
			float32(opt.Beta2), float32(opt.Eps), float32(bc2Sqrt), n)
	}
	worst := within(t, "w", d.Download(wP, n), f64s(wCPU), func(i int) float64 {
		return 1e-6 * max(1, math.Abs(float64(wCPU[i])))
	})
	t.Logf("adam after %d steps: worst |diff|/tolerance %.3f", steps, worst)
}

func testGatherRows(t *testing.T, d Dev) {
	r := NewRand(t)
	const srcRows, cols, rows, nValid = 50, 7, 40, 29
	src := Randn(r, srcRows*cols, 1)
	idx := make([]int32, nValid)
	for k := range idx {
		idx[k] = int32(r.IntN(srcRows))
	}
	idx[0], idx[1] = srcRows-1, srcRows-1 // the last row, twice
	want := make([]float32, rows*cols)
	for k, i := range idx {
		copy(want[k*cols:(k+1)*cols], src[int(i)*cols:(int(i)+1)*cols])
	}
	srcP, idxP := d.Upload(src), d.UploadInt32(idx)
	for _, gb := range launchConfigs(rows * cols) {
		dst := d.Alloc(rows * cols) // NaN-filled: the padding must be written
		d.Launch("gather_rows", gb[0], gb[1], dst, srcP, idxP, rows, cols, nValid)
		SameBits(t, "dst", d.Download(dst, rows*cols), want)
	}
}

func testGatherTargets(t *testing.T, d Dev) {
	r := NewRand(t)
	const ny, rows, nValid = 60, 48, 45
	y := Randn(r, ny, 1)
	idx := make([]int32, nValid)
	for k := range idx {
		idx[k] = int32(r.IntN(ny))
	}
	wantR, wantW := make([]float32, rows), make([]float32, rows)
	for k, i := range idx {
		wantR[k], wantW[k] = y[i], 1
	}
	yP, idxP := d.Upload(y), d.UploadInt32(idx)
	for _, gb := range launchConfigs(rows) {
		rP, wtP := d.Alloc(rows), d.Alloc(rows)
		d.Launch("gather_targets", gb[0], gb[1], rP, wtP, yP, idxP, rows, nValid)
		SameBits(t, "r", d.Download(rP, rows), wantR)
		SameBits(t, "wt", d.Download(wtP, rows), wantW)
	}
}

func testFillAddInto(t *testing.T, d Dev) {
	r := NewRand(t)
	const n = 777
	a, b := Randn(r, n, 1), Randn(r, n, 1)
	for _, gb := range launchConfigs(n) {
		x := d.Alloc(n)
		d.Launch("fill", gb[0], gb[1], x, float32(-2.5), n)
		want := make([]float32, n)
		for i := range want {
			want[i] = -2.5
		}
		SameBits(t, "fill", d.Download(x, n), want)

		dst, src := d.Upload(a), d.Upload(b)
		d.Launch("add_into", gb[0], gb[1], dst, src, n)
		for i := range want {
			want[i] = a[i] + b[i]
		}
		SameBits(t, "add_into", d.Download(dst, n), want)
		d.Launch("add_into", gb[0], gb[1], src, src, n) // in place: doubles
		for i := range want {
			want[i] = b[i] + b[i]
		}
		SameBits(t, "add_into in place", d.Download(src, n), want)
	}
}
