package ops

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// SigmaEps is the floor added to softplus(s) to form sigma, so that sigma > 0
// even when softplus underflows.
const SigmaEps = 1e-4

const halfLog2Pi = 0.91893853320467274178032973640561764 // 0.5·log(2π)

// ProbLoss returns the model's scalar training loss as ONE node (a
// ProbLossOp):
//
//	loss = Σ_i wt_i·(NLL_i + bceW·BCE_i) / Σ_i wt_i
//	sigma_i = softplus(s_i) + SigmaEps
//	NLL_i   = 0.5·log(2π) + log sigma_i + 0.5·((r_i − mu_i)/sigma_i)²
//	BCE_i   = softplus(logit_i) − y_i·logit_i,   y_i = 1[r_i > 0]
//
// out [N,3] holds the rows (mu_i, s_i, logit_i), r [N] the target change,
// wt [N] the row weights; float32 or float64, one dtype for all. Weights must
// be ≥ 0. A row with weight 0 (a padding row of a fixed-size batch) is
// skipped: it adds exactly 0 to the loss and gets a zero gradient, whatever
// its values. When every weight is 0 the loss and its gradient are 0. The sums
// run in float64 for both dtypes. Differentiable with respect to out only; the
// gradient is one ProbLossGradOp node.
func ProbLoss(out, r, wt *gorgonia.Node, bceW float64) (*gorgonia.Node, error) {
	if math.IsNaN(bceW) || math.IsInf(bceW, 0) {
		return nil, fmt.Errorf("ops: probloss: BCE weight %v is not finite", bceW)
	}
	n, err := gorgonia.ApplyOp(ProbLossOp{bceW: bceW}, out, r, wt)
	if err != nil {
		return nil, fmt.Errorf("ops: probloss(%v, %v, %v): %w", out, r, wt, err)
	}
	return n, nil
}

// Softplus returns log(1 + eˣ) without overflow or loss of precision.
func Softplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}

// Sigmoid returns 1/(1 + e⁻ˣ) without overflow.
func Sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// RowLoss returns the Gaussian NLL and the BCE of one row (mu, s, logit)
// against the target change r, as defined at ProbLoss (unweighted, without
// bceW), in float64.
func RowLoss(mu, s, logit, r float64) (nll, bce float64) {
	sigma := Softplus(s) + SigmaEps
	z := (r - mu) / sigma
	nll = halfLog2Pi + math.Log(sigma) + 0.5*z*z
	bce = Softplus(logit)
	if r > 0 {
		bce -= logit
	}
	return nll, bce
}

// rowGrad returns the derivatives of NLL + bceW·BCE of one row:
//
//	∂/∂mu    = −(r−mu)/sigma²
//	∂/∂s     = (1/sigma − (r−mu)²/sigma³)·sigmoid(s)
//	∂/∂logit = bceW·(sigmoid(logit) − y)
func rowGrad(mu, s, logit, r, bceW float64) (dmu, ds, dlogit float64) {
	sigma := Softplus(s) + SigmaEps
	inv := 1 / sigma
	e := (r - mu) * inv // (r−mu)/sigma
	dmu = -e * inv
	ds = (inv - e*e*inv) * Sigmoid(s)
	y := 0.0
	if r > 0 {
		y = 1
	}
	dlogit = bceW * (Sigmoid(logit) - y)
	return
}

func probLoss[T float](out, r, wt []T, bceW float64) float64 {
	out = out[:3*len(r)]
	wt = wt[:len(r)]
	var sum, sumW float64
	for i := range r {
		w := float64(wt[i])
		if w == 0 {
			continue
		}
		nll, bce := RowLoss(float64(out[3*i]), float64(out[3*i+1]), float64(out[3*i+2]), float64(r[i]))
		sum += w * (nll + bceW*bce)
		sumW += w
	}
	if sumW == 0 {
		return 0
	}
	return sum / sumW
}

func probLossGrad[T float](d, out, r, wt []T, g, bceW float64) {
	d = d[:3*len(r)]
	out = out[:3*len(r)]
	wt = wt[:len(r)]
	var sumW float64
	for _, w := range wt {
		sumW += float64(w)
	}
	if sumW == 0 {
		clear(d)
		return
	}
	k := g / sumW
	for i := range r {
		w := float64(wt[i])
		if w == 0 {
			d[3*i], d[3*i+1], d[3*i+2] = 0, 0, 0
			continue
		}
		dmu, ds, dl := rowGrad(float64(out[3*i]), float64(out[3*i+1]), float64(out[3*i+2]), float64(r[i]), bceW)
		c := k * w
		d[3*i], d[3*i+1], d[3*i+2] = T(c*dmu), T(c*ds), T(c*dl)
	}
}

// LossSums are one batch's weighted loss sums, the five the device's
// prob_loss kernel keeps: the batch's loss is Loss/W (0 when W is 0).
type LossSums struct {
	Loss  float64 // Σ wt·(NLL + bceW·BCE)
	W     float64 // Σ wt
	NLL   float64 // Σ wt·NLL
	BCE   float64 // Σ wt·BCE
	Brier float64 // Σ wt·(sigmoid(logit) − y)²
}

// ProbLossStep is ProbLossOp and ProbLossGradOp in one pass over the rows,
// for callers that run the ops themselves: it returns the batch's sums (the
// loss Loss/W is what ProbLossOp returns) and, when d is not nil, writes
// the gradient with respect to out for the upstream gradient g (what
// ProbLossGradOp returns). out [N,3], r and wt [N], d [N,3], float32. The
// numbers are bit for bit the two ops' (and RowLoss's): each row's
// exponentials are shared, 2 exp, 2 log1p and 1 log instead of 5, 3 and 1.
// It allocates nothing and panics when a slice is too short.
func ProbLossStep(d, out, r, wt []float32, g, bceW float64) LossSums {
	n := len(r)
	if len(out) < 3*n || len(wt) < n || (d != nil && len(d) < 3*n) {
		panic(fmt.Sprintf("ops: ProbLossStep: %d rows: len(out)=%d len(wt)=%d len(d)=%d", n, len(out), len(wt), len(d)))
	}
	out = out[:3*n]
	wt = wt[:n]
	var s LossSums
	for _, w := range wt {
		s.W += float64(w)
	}
	var k float64
	if d != nil {
		d = d[:3*n]
		if s.W == 0 {
			clear(d)
			d = nil
		} else {
			k = g / s.W
		}
	}
	for i, ri := range r {
		w := float64(wt[i])
		if w == 0 {
			if d != nil {
				d[3*i], d[3*i+1], d[3*i+2] = 0, 0, 0
			}
			continue
		}
		mu, sv, logit, rv := float64(out[3*i]), float64(out[3*i+1]), float64(out[3*i+2]), float64(ri)
		spS, sigS := softplusSigmoid(sv)
		spL, sigL := softplusSigmoid(logit)
		// RowLoss
		sigma := spS + SigmaEps
		z := (rv - mu) / sigma
		nll := halfLog2Pi + math.Log(sigma) + 0.5*z*z
		bce := spL
		y := 0.0
		if rv > 0 {
			bce -= logit
			y = 1
		}
		p := sigL - y
		s.Loss += w * (nll + bceW*bce)
		s.NLL += w * nll
		s.BCE += w * bce
		s.Brier += w * (p * p)
		if d != nil { // rowGrad
			inv := 1 / sigma
			e := (rv - mu) * inv
			c := k * w
			d[3*i] = float32(c * (-e * inv))
			d[3*i+1] = float32(c * ((inv - e*e*inv) * sigS))
			d[3*i+2] = float32(c * (bceW * (sigL - y)))
		}
	}
	return s
}

// softplusSigmoid returns Softplus(x) and Sigmoid(x) from one exponential,
// e^(−|x|): bit for bit the two functions' values, which compute that
// same exponential on either side of 0.
func softplusSigmoid(x float64) (sp, sig float64) {
	e := math.Exp(-math.Abs(x))
	if x > 0 {
		sp = x + math.Log1p(e)
	} else {
		sp = math.Log1p(e)
	}
	if x >= 0 {
		sig = 1 / (1 + e)
	} else {
		sig = e / (1 + e)
	}
	return sp, sig
}

func probLossShapes(op gorgonia.Op, out, r, wt tensor.Shape) error {
	if out[1] != 3 || r[0] != out[0] || wt[0] != out[0] {
		return fmt.Errorf("%v: %w: want out [N,3], r [N], wt [N]; got %v, %v, %v", op, ErrShape, out, r, wt)
	}
	return nil
}

// ----------------------------------------------------------- ProbLossOp

// ProbLossOp is the fused loss of ProbLoss: (out [N,3], r [N], wt [N]) →
// scalar. Device: one reduction kernel over the N rows (Σ wt·row loss and
// Σ wt), then one division.
type ProbLossOp struct{ bceW float64 }

// BCEWeight is the weight of the BCE term.
func (op ProbLossOp) BCEWeight() float64 { return op.bceW }

// Kind returns KindProbLoss.
func (op ProbLossOp) Kind() Kind { return KindProbLoss }

// Arity returns 3.
func (op ProbLossOp) Arity() int { return 3 }

// Type is Matrix a → Vector a → Vector a → a. The result must be the bare
// type variable, not a rank-0 tensor type: gorgonia.Grad only accepts a cost
// whose type is a dtype.
func (op ProbLossOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	v := gorgonia.TensorType{Dims: 1, Of: a}
	return hm.NewFnType(gorgonia.TensorType{Dims: 2, Of: a}, v, v, a)
}

// InferShape checks out [N,3], r [N], wt [N] and returns the scalar shape.
func (op ProbLossOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := shapesOf(op, ds, 2, 1, 1)
	if err != nil {
		return nil, err
	}
	if err := probLossShapes(op, ss[0], ss[1], ss[2]); err != nil {
		return nil, err
	}
	return tensor.ScalarShape(), nil
}

// Do returns the loss as a *gorgonia.F32 or *gorgonia.F64.
func (op ProbLossOp) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	ts, dt, err := operands(op, vals, 2, 1, 1)
	if err != nil {
		return nil, err
	}
	if err := probLossShapes(op, ts[0].Shape(), ts[1].Shape(), ts[2].Shape()); err != nil {
		return nil, err
	}
	if dt == tensor.Float32 {
		return gorgonia.NewF32(float32(probLoss(ts[0].Float32s(), ts[1].Float32s(), ts[2].Float32s(), op.bceW))), nil
	}
	return gorgonia.NewF64(probLoss(ts[0].Float64s(), ts[1].Float64s(), ts[2].Float64s(), op.bceW)), nil
}

// ReturnsPtr is false.
func (op ProbLossOp) ReturnsPtr() bool { return false }

// CallsExtern is false.
func (op ProbLossOp) CallsExtern() bool { return false }

// OverwritesInput is -1.
func (op ProbLossOp) OverwritesInput() int { return -1 }

// WriteHash encodes the exact bits of the BCE weight.
func (op ProbLossOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "ops.ProbLoss{bceW=%x}", math.Float64bits(op.bceW))
}

// Hashcode hashes WriteHash.
func (op ProbLossOp) Hashcode() uint32 { return hashOf(op) }

func (op ProbLossOp) String() string { return fmt.Sprintf("ProbLoss{bceW=%g}", op.bceW) }

// DiffWRT: out only; the target and the weights are data.
func (op ProbLossOp) DiffWRT(int) []bool { return []bool{true, false, false} }

// SymDiff returns the ProbLossGradOp node for out, nil for r and wt.
func (op ProbLossOp) SymDiff(in gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	if len(in) != 3 {
		return nil, fmt.Errorf("%v: SymDiff: %w: want 3 inputs, got %d", op, ErrShape, len(in))
	}
	d, err := gorgonia.ApplyOp(ProbLossGradOp(op), in[0], in[1], in[2], g)
	if err != nil {
		return nil, fmt.Errorf("%v: SymDiff: %w", op, err)
	}
	return gorgonia.Nodes{d, nil, nil}, nil
}

// ------------------------------------------------------- ProbLossGradOp

// ProbLossGradOp is ProbLoss's gradient with respect to out:
// (out [N,3], r [N], wt [N], g scalar) → d [N,3], where g is the upstream
// gradient of the loss and, with W = Σ_j wt_j,
//
//	d_i = g·wt_i/W · (∂/∂mu, ∂/∂s, ∂/∂logit)(NLL_i + bceW·BCE_i)
//	∂/∂mu    = −(r_i−mu_i)/sigma_i²
//	∂/∂s     = (1/sigma_i − (r_i−mu_i)²/sigma_i³)·sigmoid(s_i)
//	∂/∂logit = bceW·(sigmoid(logit_i) − y_i)
//
// (0 for rows with wt_i = 0, and everywhere when W = 0). Device: one kernel
// (a block reduction for W, then the elementwise rows).
type ProbLossGradOp struct{ bceW float64 }

// BCEWeight is the weight of the BCE term.
func (op ProbLossGradOp) BCEWeight() float64 { return op.bceW }

// Kind returns KindProbLossGrad.
func (op ProbLossGradOp) Kind() Kind { return KindProbLossGrad }

// Arity returns 4.
func (op ProbLossGradOp) Arity() int { return 4 }

// Type is Matrix a → Vector a → Vector a → a → Matrix a.
func (op ProbLossGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	m, v := gorgonia.TensorType{Dims: 2, Of: a}, gorgonia.TensorType{Dims: 1, Of: a}
	return hm.NewFnType(m, v, v, a, m)
}

// InferShape checks the operands and returns out's shape [N,3].
func (op ProbLossGradOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := shapesOf(op, ds, 2, 1, 1, 0)
	if err != nil {
		return nil, err
	}
	if err := probLossShapes(op, ss[0], ss[1], ss[2]); err != nil {
		return nil, err
	}
	return ss[0].Clone(), nil
}

func (op ProbLossGradOp) check(vals []gorgonia.Value) (ts [4]*tensor.Dense, dt tensor.Dtype, g float64, err error) {
	if ts, dt, err = operands(op, vals, 2, 1, 1); err != nil {
		return
	}
	if err = probLossShapes(op, ts[0].Shape(), ts[1].Shape(), ts[2].Shape()); err != nil {
		return
	}
	if len(vals) != 4 {
		err = fmt.Errorf("%v: %w: want 4 operands, got %d", op, ErrShape, len(vals))
		return
	}
	g, err = scalarOf(op, vals[3], dt)
	return
}

// scalarOf reads the upstream gradient, a *F32/*F64 or a one-element tensor
// of the operands' dtype.
func scalarOf(op gorgonia.Op, v gorgonia.Value, dt tensor.Dtype) (float64, error) {
	switch s := v.(type) {
	case *gorgonia.F32:
		if dt == tensor.Float32 {
			return float64(*s), nil
		}
	case *gorgonia.F64:
		if dt == tensor.Float64 {
			return float64(*s), nil
		}
	case *tensor.Dense:
		if s.Dtype() == dt && s.Size() == 1 {
			if dt == tensor.Float32 {
				return float64(s.Float32s()[0]), nil
			}
			return s.Float64s()[0], nil
		}
	}
	return 0, fmt.Errorf("%v: %w: upstream gradient must be a %v scalar, got %T", op, ErrDtype, dt, v)
}

// Do computes the gradient into a new [N,3] tensor.
func (op ProbLossGradOp) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	ts, dt, g, err := op.check(vals)
	if err != nil {
		return nil, err
	}
	dst := newResult(dt, ts[0].Shape()[0], 3)
	op.run(dst, ts, dt, g)
	return dst, nil
}

// UsePreallocDo computes into p, which must be [N,3] of the operands' dtype.
func (op ProbLossGradOp) UsePreallocDo(p gorgonia.Value, vals ...gorgonia.Value) (gorgonia.Value, error) {
	ts, dt, g, err := op.check(vals)
	if err != nil {
		return nil, err
	}
	dst, err := prealloc(op, p, dt, ts[0].Shape()[0], 3)
	if err != nil {
		return nil, err
	}
	op.run(dst, ts, dt, g)
	return dst, nil
}

func (op ProbLossGradOp) run(dst *tensor.Dense, ts [4]*tensor.Dense, dt tensor.Dtype, g float64) {
	if dt == tensor.Float32 {
		probLossGrad(dst.Float32s(), ts[0].Float32s(), ts[1].Float32s(), ts[2].Float32s(), g, op.bceW)
	} else {
		probLossGrad(dst.Float64s(), ts[0].Float64s(), ts[1].Float64s(), ts[2].Float64s(), g, op.bceW)
	}
}

// ReturnsPtr is false: the result is a new tensor.
func (op ProbLossGradOp) ReturnsPtr() bool { return false }

// CallsExtern is false.
func (op ProbLossGradOp) CallsExtern() bool { return false }

// OverwritesInput is -1.
func (op ProbLossGradOp) OverwritesInput() int { return -1 }

// WriteHash encodes the exact bits of the BCE weight.
func (op ProbLossGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "ops.ProbLossGrad{bceW=%x}", math.Float64bits(op.bceW))
}

// Hashcode hashes WriteHash.
func (op ProbLossGradOp) Hashcode() uint32 { return hashOf(op) }

func (op ProbLossGradOp) String() string { return fmt.Sprintf("ProbLossGrad{bceW=%g}", op.bceW) }
