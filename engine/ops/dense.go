package ops

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Activation is the nonlinearity a dense layer applies after its bias.
type Activation int

// The activations a dense layer supports.
const (
	Identity Activation = iota // act(z) = z
	ReLU                       // act(z) = max(z, 0); act'(z) = 1[z > 0], read off the output as 1[y > 0]
)

func (a Activation) String() string {
	switch a {
	case Identity:
		return "identity"
	case ReLU:
		return "relu"
	}
	return fmt.Sprintf("Activation(%d)", int(a))
}

func (a Activation) valid() bool { return a == Identity || a == ReLU }

// Dense returns act(x·w + b) as ONE graph node, whose op is a DenseOp.
// x [N,in], w [in,out], b [out] (a vector) → [N,out]; float32 or float64, one
// dtype for all three. Its gradient (gorgonia.Grad) is built from this
// package's ops, each one GEMM or one kernel:
//
//	dz = ActGradOp(dy, y)         dy ⊙ act'(y)   (skipped for Identity: dz = dy)
//	dx = MatMulOp{TransB}(dz, w)  dz·wᵀ          [N,in]
//	dw = MatMulOp{TransA}(x, dz)  xᵀ·dz          [in,out]
//	db = ColSumOp(dz)             Σ_rows dz      [out]
func Dense(x, w, b *gorgonia.Node, act Activation) (*gorgonia.Node, error) {
	return applyDense(DenseOp{act: act}, x, w, b)
}

// DenseNoInputGrad is Dense for a layer whose input x is data, not a
// function of the parameters (the first layer): the op declares x
// non-differentiable, so gorgonia.Grad builds no dx = dz·wᵀ GEMM. The
// TapeMachine runs every node of the graph, so with Dense that GEMM would run
// on every step and its result would be thrown away. Asking for the gradient
// with respect to x of such a node is an error ("Non Differentiable WRTs").
func DenseNoInputGrad(x, w, b *gorgonia.Node, act Activation) (*gorgonia.Node, error) {
	return applyDense(DenseOp{act: act, noInputGrad: true}, x, w, b)
}

func applyDense(op DenseOp, x, w, b *gorgonia.Node) (*gorgonia.Node, error) {
	if !op.act.valid() {
		return nil, fmt.Errorf("ops: dense: %w %d", ErrActivation, int(op.act))
	}
	n, err := gorgonia.ApplyOp(op, x, w, b)
	if err != nil {
		return nil, fmt.Errorf("ops: dense(%v, %v, %v): %w", x, w, b, err)
	}
	return n, nil
}

// DenseForward computes dst = act(x·w + b) in float32: x [n,in], w [in,out],
// b [out], dst [n,out], all row-major. One GEMM, then bias and activation
// fused into one pass over dst. It allocates nothing (beyond what the
// installed blas32 implementation does: gonum's splits large products over
// goroutines) and panics, like BLAS, when a slice is too short.
func DenseForward(dst, x, w, b []float32, n, in, out int, act Activation) {
	checkDenseLens(len(dst), len(x), len(w), len(b), n, in, out)
	gemm32(false, false, n, out, in, x, w, 0, dst)
	biasAct(dst[:n*out], b[:out], act)
}

func denseForward64(dst, x, w, b []float64, n, in, out int, act Activation) {
	checkDenseLens(len(dst), len(x), len(w), len(b), n, in, out)
	gemm64(false, false, n, out, in, x, w, 0, dst)
	biasAct(dst[:n*out], b[:out], act)
}

func checkDenseLens(ld, lx, lw, lb, n, in, out int) {
	if ld < n*out || lx < n*in || lw < in*out || lb < out {
		panic(fmt.Sprintf("ops: DenseForward: slices too short for n=%d in=%d out=%d: len(dst)=%d len(x)=%d len(w)=%d len(b)=%d",
			n, in, out, ld, lx, lw, lb))
	}
}

// biasAct applies y = act(y + b) row by row, in place. ReLU uses the
// builtin max, which compiles without a branch: with pre-activations of
// random sign a compare-and-branch mispredicts half the time and made this
// pass 4-5× slower (61 µs against 14 µs for 256×64 float32). max also keeps
// NaN, as torch.relu does.
func biasAct[T float](y, b []T, act Activation) {
	out := len(b)
	if out == 0 {
		return
	}
	for r := 0; r+out <= len(y); r += out {
		row := y[r : r+out : r+out]
		if act == ReLU {
			for j := range row {
				row[j] = max(row[j]+b[j], 0)
			}
		} else {
			for j := range row {
				row[j] += b[j]
			}
		}
	}
}

// ---------------------------------------------------------------- DenseOp

// DenseOp is the fused dense layer: (x [N,in], w [in,out], b [out]) →
// y = act(x·w + b) [N,out]. Device: one GEMM (m=N, n=out, k=in, no
// transposes) and one epilogue adding b to every row and applying the
// activation. Build it with Dense or DenseNoInputGrad.
type DenseOp struct {
	act         Activation
	noInputGrad bool
}

// Activation is the layer's activation.
func (op DenseOp) Activation() Activation { return op.act }

// InputGrad reports whether the gradient flows to x (false for
// DenseNoInputGrad).
func (op DenseOp) InputGrad() bool { return !op.noInputGrad }

// Kind returns KindDense.
func (op DenseOp) Kind() Kind { return KindDense }

// Arity returns 3.
func (op DenseOp) Arity() int { return 3 }

// Type is Matrix a → Matrix a → Vector a → Matrix a.
func (op DenseOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	m, v := gorgonia.TensorType{Dims: 2, Of: a}, gorgonia.TensorType{Dims: 1, Of: a}
	return hm.NewFnType(m, m, v, m)
}

// InferShape checks x [N,in], w [in,out], b [out] and returns [N,out].
func (op DenseOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := shapesOf(op, ds, 2, 2, 1)
	if err != nil {
		return nil, err
	}
	x, w, b := ss[0], ss[1], ss[2]
	if w[0] != x[1] || b[0] != w[1] {
		return nil, fmt.Errorf("%v: %w: want x [N,in], w [in,out], b [out]; got %v, %v, %v", op, ErrShape, x, w, b)
	}
	return tensor.Shape{x[0], w[1]}, nil
}

func (op DenseOp) check(vals []gorgonia.Value) (ts [4]*tensor.Dense, dt tensor.Dtype, n, in, out int, err error) {
	if ts, dt, err = operands(op, vals, 2, 2, 1); err != nil {
		return
	}
	xs, ws, bs := ts[0].Shape(), ts[1].Shape(), ts[2].Shape()
	n, in, out = xs[0], xs[1], ws[1]
	if ws[0] != in || bs[0] != out {
		err = fmt.Errorf("%v: %w: want x [N,in], w [in,out], b [out]; got %v, %v, %v", op, ErrShape, xs, ws, bs)
	}
	return
}

// Do computes act(x·w + b) into a new tensor.
func (op DenseOp) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	ts, dt, n, in, out, err := op.check(vals)
	if err != nil {
		return nil, err
	}
	dst := newResult(dt, n, out)
	op.run(dst, ts, dt, n, in, out)
	return dst, nil
}

// UsePreallocDo computes into p, which must be [N,out] of the operands'
// dtype. (The TapeMachine never calls it between Resets: see doc.go.)
func (op DenseOp) UsePreallocDo(p gorgonia.Value, vals ...gorgonia.Value) (gorgonia.Value, error) {
	ts, dt, n, in, out, err := op.check(vals)
	if err != nil {
		return nil, err
	}
	dst, err := prealloc(op, p, dt, n, out)
	if err != nil {
		return nil, err
	}
	op.run(dst, ts, dt, n, in, out)
	return dst, nil
}

func (op DenseOp) run(dst *tensor.Dense, ts [4]*tensor.Dense, dt tensor.Dtype, n, in, out int) {
	if dt == tensor.Float32 {
		DenseForward(dst.Float32s(), ts[0].Float32s(), ts[1].Float32s(), ts[2].Float32s(), n, in, out, op.act)
	} else {
		denseForward64(dst.Float64s(), ts[0].Float64s(), ts[1].Float64s(), ts[2].Float64s(), n, in, out, op.act)
	}
}

// ReturnsPtr is false: the result is a new tensor, never an operand.
func (op DenseOp) ReturnsPtr() bool { return false }

// CallsExtern is false: BLAS runs in-process on the calling goroutine.
func (op DenseOp) CallsExtern() bool { return false }

// OverwritesInput is -1: no operand is overwritten.
func (op DenseOp) OverwritesInput() int { return -1 }

// WriteHash encodes the activation and the input-gradient flag.
func (op DenseOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "ops.Dense{act=%d,noInputGrad=%t}", int(op.act), op.noInputGrad)
}

// Hashcode hashes WriteHash.
func (op DenseOp) Hashcode() uint32 { return hashOf(op) }

func (op DenseOp) String() string {
	if op.noInputGrad {
		return fmt.Sprintf("Dense{%v,noInputGrad}", op.act)
	}
	return fmt.Sprintf("Dense{%v}", op.act)
}

// DiffWRT: x (unless noInputGrad), w and b.
func (op DenseOp) DiffWRT(int) []bool { return []bool{!op.noInputGrad, true, true} }

// SymDiff builds dx, dw, db from the upstream gradient dy [N,out] and the
// layer's own output y (for the activation mask).
func (op DenseOp) SymDiff(in gorgonia.Nodes, y, dy *gorgonia.Node) (gorgonia.Nodes, error) {
	if len(in) != 3 {
		return nil, fmt.Errorf("%v: SymDiff: %w: want 3 inputs, got %d", op, ErrShape, len(in))
	}
	x, w := in[0], in[1]
	dz := dy
	if op.act != Identity {
		var err error
		if dz, err = gorgonia.ApplyOp(ActGradOp{act: op.act}, dy, y); err != nil {
			return nil, fmt.Errorf("%v: SymDiff: activation mask: %w", op, err)
		}
	}
	var dx *gorgonia.Node
	if !op.noInputGrad {
		var err error
		if dx, err = gorgonia.ApplyOp(MatMulOp{transB: true}, dz, w); err != nil {
			return nil, fmt.Errorf("%v: SymDiff: dx: %w", op, err)
		}
	}
	dw, err := gorgonia.ApplyOp(MatMulOp{transA: true}, x, dz)
	if err != nil {
		return nil, fmt.Errorf("%v: SymDiff: dw: %w", op, err)
	}
	db, err := gorgonia.ApplyOp(ColSumOp{}, dz)
	if err != nil {
		return nil, fmt.Errorf("%v: SymDiff: db: %w", op, err)
	}
	return gorgonia.Nodes{dx, dw, db}, nil
}

// -------------------------------------------------------------- ActGradOp

// ActGradOp is the activation's backward pass: (dy [N,C], y [N,C]) →
// dz = dy ⊙ act'(y) [N,C], where y = act(z) is the forward output; for ReLU
// the mask is 1[y > 0] (0 at z = 0, as in PyTorch). Device: one elementwise
// kernel. Dense never emits it for Identity.
type ActGradOp struct{ act Activation }

// Activation is the activation whose derivative is applied.
func (op ActGradOp) Activation() Activation { return op.act }

// Kind returns KindActGrad.
func (op ActGradOp) Kind() Kind { return KindActGrad }

// Arity returns 2.
func (op ActGradOp) Arity() int { return 2 }

// Type is Matrix a → Matrix a → Matrix a.
func (op ActGradOp) Type() hm.Type {
	m := gorgonia.TensorType{Dims: 2, Of: hm.TypeVariable('a')}
	return hm.NewFnType(m, m, m)
}

// InferShape checks dy and y have one shape and returns it.
func (op ActGradOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := shapesOf(op, ds, 2, 2)
	if err != nil {
		return nil, err
	}
	if !ss[0].Eq(ss[1]) {
		return nil, fmt.Errorf("%v: %w: dy %v and y %v differ", op, ErrShape, ss[0], ss[1])
	}
	return ss[0].Clone(), nil
}

func (op ActGradOp) check(vals []gorgonia.Value) (ts [4]*tensor.Dense, dt tensor.Dtype, err error) {
	if ts, dt, err = operands(op, vals, 2, 2); err != nil {
		return
	}
	if !ts[0].Shape().Eq(ts[1].Shape()) {
		err = fmt.Errorf("%v: %w: dy %v and y %v differ", op, ErrShape, ts[0].Shape(), ts[1].Shape())
	}
	return
}

// Do computes dy ⊙ act'(y) into a new tensor.
func (op ActGradOp) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	ts, dt, err := op.check(vals)
	if err != nil {
		return nil, err
	}
	s := ts[0].Shape()
	dst := newResult(dt, s[0], s[1])
	op.run(dst, ts, dt)
	return dst, nil
}

// UsePreallocDo computes into p, which must have dy's shape and dtype.
func (op ActGradOp) UsePreallocDo(p gorgonia.Value, vals ...gorgonia.Value) (gorgonia.Value, error) {
	ts, dt, err := op.check(vals)
	if err != nil {
		return nil, err
	}
	s := ts[0].Shape()
	dst, err := prealloc(op, p, dt, s[0], s[1])
	if err != nil {
		return nil, err
	}
	op.run(dst, ts, dt)
	return dst, nil
}

func (op ActGradOp) run(dst *tensor.Dense, ts [4]*tensor.Dense, dt tensor.Dtype) {
	if dt == tensor.Float32 {
		actGrad(dst.Float32s(), ts[0].Float32s(), ts[1].Float32s(), op.act)
	} else {
		actGrad(dst.Float64s(), ts[0].Float64s(), ts[1].Float64s(), op.act)
	}
}

func actGrad[T float](dz, dy, y []T, act Activation) {
	if act != ReLU {
		copy(dz, dy)
		return
	}
	if dz32, ok := any(dz).([]float32); ok {
		reluGrad32(dz32, any(dy).([]float32), any(y).([]float32))
		return
	}
	y = y[:len(dz)]
	dy = dy[:len(dz)]
	for i := range dz {
		if y[i] > 0 {
			dz[i] = dy[i]
		} else {
			dz[i] = 0
		}
	}
}

// reluGrad32 is dz = dy ⊙ 1[y > 0] without a branch on the data: the
// comparison becomes a SETcc and the select a bit mask (dy's bits or +0,
// exactly what the branchy loop stores). With ReLU outputs half zero a
// compare-and-branch mispredicts every other element: the branchy loop took
// 56 µs for 256×64 float32, this one 18 µs.
func reluGrad32(dz, dy, y []float32) {
	y = y[:len(dz)]
	dy = dy[:len(dz)]
	for i := range dz {
		var keep uint32
		if y[i] > 0 {
			keep = 1
		}
		dz[i] = math.Float32frombits(math.Float32bits(dy[i]) & -keep)
	}
}

// ActGrad computes dz = dy ⊙ act'(y) in float32 (ActGradOp's kernel) for
// callers that run the ops themselves: y is the activation's output, dz,
// dy and y have one length. It allocates nothing; dz may be dy (in place).
func ActGrad(dz, dy, y []float32, act Activation) {
	if len(dy) < len(dz) || len(y) < len(dz) {
		panic(fmt.Sprintf("ops: ActGrad: len(dz)=%d, len(dy)=%d, len(y)=%d", len(dz), len(dy), len(y)))
	}
	actGrad(dz, dy, y, act)
}

// ReturnsPtr is false: the result is a new tensor.
func (op ActGradOp) ReturnsPtr() bool { return false }

// CallsExtern is false.
func (op ActGradOp) CallsExtern() bool { return false }

// OverwritesInput is -1.
func (op ActGradOp) OverwritesInput() int { return -1 }

// WriteHash encodes the activation.
func (op ActGradOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "ops.ActGrad{act=%d}", int(op.act)) }

// Hashcode hashes WriteHash.
func (op ActGradOp) Hashcode() uint32 { return hashOf(op) }

func (op ActGradOp) String() string { return fmt.Sprintf("ActGrad{%v}", op.act) }

// ---------------------------------------------------------------- MatMulOp

// MatMulOp is one GEMM with transpose flags and no materialised transpose:
// (a, b) → op(a)·op(b), where op(a) = aᵀ when TransA, likewise b.
// Dense's gradient uses two forms:
//
//	TransB: (dz [N,out], w [in,out]) → dz·wᵀ [N,in]   (dx)
//	TransA: (x [N,in], dz [N,out])   → xᵀ·dz [in,out] (dw)
//
// Device: one cuBLAS GEMM with the same flags (row-major: swap operands).
type MatMulOp struct{ transA, transB bool }

// TransA reports whether the first operand is transposed.
func (op MatMulOp) TransA() bool { return op.transA }

// TransB reports whether the second operand is transposed.
func (op MatMulOp) TransB() bool { return op.transB }

// Kind returns KindMatMul.
func (op MatMulOp) Kind() Kind { return KindMatMul }

// Arity returns 2.
func (op MatMulOp) Arity() int { return 2 }

// Type is Matrix a → Matrix a → Matrix a.
func (op MatMulOp) Type() hm.Type {
	m := gorgonia.TensorType{Dims: 2, Of: hm.TypeVariable('a')}
	return hm.NewFnType(m, m, m)
}

// dims returns m, n, k of op(a) [m,k] · op(b) [k,n].
func (op MatMulOp) dims(a, b tensor.Shape) (m, n, k int, err error) {
	m, k = a[0], a[1]
	if op.transA {
		m, k = k, m
	}
	kb, n := b[0], b[1]
	if op.transB {
		kb, n = n, kb
	}
	if k != kb {
		err = fmt.Errorf("%v: %w: inner dimensions differ: %v, %v", op, ErrShape, a, b)
	}
	return
}

// InferShape returns [m,n].
func (op MatMulOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := shapesOf(op, ds, 2, 2)
	if err != nil {
		return nil, err
	}
	m, n, _, err := op.dims(ss[0], ss[1])
	if err != nil {
		return nil, err
	}
	return tensor.Shape{m, n}, nil
}

func (op MatMulOp) check(vals []gorgonia.Value) (ts [4]*tensor.Dense, dt tensor.Dtype, m, n, k int, err error) {
	if ts, dt, err = operands(op, vals, 2, 2); err != nil {
		return
	}
	m, n, k, err = op.dims(ts[0].Shape(), ts[1].Shape())
	return
}

// Do computes op(a)·op(b) into a new tensor.
func (op MatMulOp) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	ts, dt, m, n, k, err := op.check(vals)
	if err != nil {
		return nil, err
	}
	dst := newResult(dt, m, n)
	op.run(dst, ts, dt, m, n, k)
	return dst, nil
}

// UsePreallocDo computes into p, which must be [m,n] of the operands' dtype.
func (op MatMulOp) UsePreallocDo(p gorgonia.Value, vals ...gorgonia.Value) (gorgonia.Value, error) {
	ts, dt, m, n, k, err := op.check(vals)
	if err != nil {
		return nil, err
	}
	dst, err := prealloc(op, p, dt, m, n)
	if err != nil {
		return nil, err
	}
	op.run(dst, ts, dt, m, n, k)
	return dst, nil
}

func (op MatMulOp) run(dst *tensor.Dense, ts [4]*tensor.Dense, dt tensor.Dtype, m, n, k int) {
	if dt == tensor.Float32 {
		gemm32(op.transA, op.transB, m, n, k, ts[0].Float32s(), ts[1].Float32s(), 0, dst.Float32s())
	} else {
		gemm64(op.transA, op.transB, m, n, k, ts[0].Float64s(), ts[1].Float64s(), 0, dst.Float64s())
	}
}

// MatMul computes dst = op(a)·op(b) in float32 (MatMulOp's kernel) for
// callers that run the ops themselves: op(a) is m×k (a stored k×m when
// transA), op(b) is k×n (b stored n×k when transB), dst is m×n, all
// row-major. It allocates nothing and panics when a slice is too short.
func MatMul(dst, a, b []float32, transA, transB bool, m, n, k int) {
	gemm32(transA, transB, m, n, k, a, b, 0, dst)
}

// ReturnsPtr is false: the result is a new tensor.
func (op MatMulOp) ReturnsPtr() bool { return false }

// CallsExtern is false.
func (op MatMulOp) CallsExtern() bool { return false }

// OverwritesInput is -1.
func (op MatMulOp) OverwritesInput() int { return -1 }

// WriteHash encodes both transpose flags.
func (op MatMulOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "ops.MatMul{transA=%t,transB=%t}", op.transA, op.transB)
}

// Hashcode hashes WriteHash.
func (op MatMulOp) Hashcode() uint32 { return hashOf(op) }

func (op MatMulOp) String() string {
	a, b := "A", "B"
	if op.transA {
		a = "Aᵀ"
	}
	if op.transB {
		b = "Bᵀ"
	}
	return "MatMul{" + a + "·" + b + "}"
}

// ---------------------------------------------------------------- ColSumOp

// ColSumOp sums a matrix over its rows: dz [N,C] → db [C], db_j = Σ_i dz_ij
// (the bias gradient). Device: one column-reduction kernel.
type ColSumOp struct{}

// Kind returns KindColSum.
func (op ColSumOp) Kind() Kind { return KindColSum }

// Arity returns 1.
func (op ColSumOp) Arity() int { return 1 }

// Type is Matrix a → Vector a.
func (op ColSumOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(gorgonia.TensorType{Dims: 2, Of: a}, gorgonia.TensorType{Dims: 1, Of: a})
}

// InferShape returns [C].
func (op ColSumOp) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	ss, err := shapesOf(op, ds, 2)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{ss[0][1]}, nil
}

// Do sums the rows into a new vector.
func (op ColSumOp) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	ts, dt, err := operands(op, vals, 2)
	if err != nil {
		return nil, err
	}
	dst := newResult(dt, ts[0].Shape()[1])
	op.run(dst, ts[0], dt)
	return dst, nil
}

// UsePreallocDo sums into p, which must be [C] of the operand's dtype.
func (op ColSumOp) UsePreallocDo(p gorgonia.Value, vals ...gorgonia.Value) (gorgonia.Value, error) {
	ts, dt, err := operands(op, vals, 2)
	if err != nil {
		return nil, err
	}
	dst, err := prealloc(op, p, dt, ts[0].Shape()[1])
	if err != nil {
		return nil, err
	}
	op.run(dst, ts[0], dt)
	return dst, nil
}

func (op ColSumOp) run(dst, src *tensor.Dense, dt tensor.Dtype) {
	if dt == tensor.Float32 {
		colSum(dst.Float32s(), src.Float32s())
	} else {
		colSum(dst.Float64s(), src.Float64s())
	}
}

// colSum sets dst[j] = Σ_i src[i*C+j], C = len(dst), accumulating row by row
// (a cache-friendly pass; the same order as the device kernel is free to
// choose another).
func colSum[T float](dst, src []T) {
	clear(dst)
	c := len(dst)
	if c == 0 {
		return
	}
	for r := 0; r+c <= len(src); r += c {
		row := src[r : r+c]
		for j, v := range row {
			dst[j] += v
		}
	}
}

// ColSum sets dst[j] = Σ_i src[i·C+j], C = len(dst), in float32
// (ColSumOp's kernel) for callers that run the ops themselves. It
// allocates nothing.
func ColSum(dst, src []float32) { colSum(dst, src) }

// ReturnsPtr is false: the result is a new tensor.
func (op ColSumOp) ReturnsPtr() bool { return false }

// CallsExtern is false.
func (op ColSumOp) CallsExtern() bool { return false }

// OverwritesInput is -1.
func (op ColSumOp) OverwritesInput() int { return -1 }

// WriteHash: the op has no parameters.
func (op ColSumOp) WriteHash(h hash.Hash) { fmt.Fprint(h, "ops.ColSum") }

// Hashcode hashes WriteHash.
func (op ColSumOp) Hashcode() uint32 { return hashOf(op) }

func (op ColSumOp) String() string { return "ColSum" }
