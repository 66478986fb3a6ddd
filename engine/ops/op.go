package ops

import (
	"errors"
	"fmt"
	"hash/fnv"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Kind says which of this package's ops a node runs. A device executor
// dispatches on it (or, equivalently, type-switches on the exported op
// types); the kind fixes the launch a node needs:
//
//	KindDense        one GEMM, then one bias+activation epilogue (DenseOp)
//	KindActGrad      one elementwise kernel                     (ActGradOp)
//	KindMatMul       one GEMM with transpose flags              (MatMulOp)
//	KindColSum       one column reduction                       (ColSumOp)
//	KindProbLoss     one reduction to a scalar                  (ProbLossOp)
//	KindProbLossGrad one kernel: Σwt reduction + elementwise    (ProbLossGradOp)
//
// The zero Kind is not a kind of this package.
type Kind int

// The kinds of op in this package.
const (
	KindDense Kind = iota + 1
	KindActGrad
	KindMatMul
	KindColSum
	KindProbLoss
	KindProbLossGrad
)

var kindNames = [...]string{
	KindDense:        "Dense",
	KindActGrad:      "ActGrad",
	KindMatMul:       "MatMul",
	KindColSum:       "ColSum",
	KindProbLoss:     "ProbLoss",
	KindProbLossGrad: "ProbLossGrad",
}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Op is implemented by every op of this package (DenseOp, ActGradOp,
// MatMulOp, ColSumOp, ProbLossOp, ProbLossGradOp), and by nothing else.
//
// Contract for a device executor: a node n with n.Op().(ops.Op) runs as the
// single launch its Kind names. Its parameters come from the op's accessors
// (Activation, TransA/TransB, BCEWeight), its operands from the graph's
// edges in operand order (ExprGraph.From(n.ID()) in Gorgonia v0.9.18, which
// exports no Children), its output shape from n.Shape(). Every operand and result is
// a dense row-major tensor of one dtype (float32 or float64); a scalar is a
// one-element value. The CPU Do of each op is the reference the device
// implementation must match.
type Op interface {
	gorgonia.Op
	Kind() Kind
}

// Errors returned (wrapped, with the op and the values) by the ops' Do and by
// graph construction. Test with errors.Is.
var (
	// ErrShape: operand shapes do not fit the op.
	ErrShape = errors.New("shape mismatch")
	// ErrDtype: an operand is not float32/float64, or operands mix dtypes.
	ErrDtype = errors.New("unsupported dtype")
	// ErrLayout: an operand is not a contiguous row-major *tensor.Dense
	// (a transposed or strided view); materialise it first.
	ErrLayout = errors.New("operand is not a contiguous row-major dense tensor")
	// ErrActivation: an Activation outside Identity, ReLU.
	ErrActivation = errors.New("unknown activation")
)

// Compile-time checks: every op is an Op; forward ops are differentiable;
// ops that accept a preallocated result say so.
var (
	_ Op = DenseOp{}
	_ Op = ActGradOp{}
	_ Op = MatMulOp{}
	_ Op = ColSumOp{}
	_ Op = ProbLossOp{}
	_ Op = ProbLossGradOp{}

	_ gorgonia.SDOp = DenseOp{}
	_ gorgonia.SDOp = ProbLossOp{}

	_ gorgonia.UsePreallocDoer = DenseOp{}
	_ gorgonia.UsePreallocDoer = ActGradOp{}
	_ gorgonia.UsePreallocDoer = MatMulOp{}
	_ gorgonia.UsePreallocDoer = ColSumOp{}
	_ gorgonia.UsePreallocDoer = ProbLossGradOp{}
)

// hashOf hashes an op through its WriteHash, which encodes every parameter:
// ExprGraph.AddNode merges nodes whose op hash and children are equal, so a
// parameter left out of the hash would silently merge two different nodes.
func hashOf(op gorgonia.Op) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// shapesOf turns InferShape's DimSizers into shapes and checks their ranks.
func shapesOf(op gorgonia.Op, ds []gorgonia.DimSizer, dims ...int) ([]tensor.Shape, error) {
	if len(ds) != len(dims) {
		return nil, fmt.Errorf("%v: %w: want %d operands, got %d", op, ErrShape, len(dims), len(ds))
	}
	ss, err := gorgonia.DimSizersToShapes(ds)
	if err != nil {
		return nil, fmt.Errorf("%v: %w: %v", op, ErrShape, err)
	}
	for i, s := range ss {
		if s.Dims() != dims[i] {
			return nil, fmt.Errorf("%v: %w: operand %d must have %d dims, got shape %v", op, ErrShape, i, dims[i], s)
		}
	}
	return ss, nil
}

// operands checks the op's tensor operands: each is a contiguous *tensor.Dense
// of rank dims[i], and all share one float dtype, which it returns. It
// allocates nothing on success.
func operands(op gorgonia.Op, vals []gorgonia.Value, dims ...int) (ts [4]*tensor.Dense, dt tensor.Dtype, err error) {
	if len(vals) < len(dims) {
		return ts, dt, fmt.Errorf("%v: %w: want %d operands, got %d", op, ErrShape, len(dims), len(vals))
	}
	for i, want := range dims {
		d, ok := vals[i].(*tensor.Dense)
		if !ok {
			return ts, dt, fmt.Errorf("%v: %w: operand %d is a %T", op, ErrLayout, i, vals[i])
		}
		if d.RequiresIterator() {
			return ts, dt, fmt.Errorf("%v: %w: operand %d (shape %v)", op, ErrLayout, i, d.Shape())
		}
		if d.Dims() != want {
			return ts, dt, fmt.Errorf("%v: %w: operand %d must have %d dims, got shape %v", op, ErrShape, i, want, d.Shape())
		}
		if i == 0 {
			dt = d.Dtype()
			if dt != tensor.Float32 && dt != tensor.Float64 {
				return ts, dt, fmt.Errorf("%v: %w: %v", op, ErrDtype, dt)
			}
		} else if d.Dtype() != dt {
			return ts, dt, fmt.Errorf("%v: %w: operand %d is %v, operand 0 is %v", op, ErrDtype, i, d.Dtype(), dt)
		}
		ts[i] = d
	}
	return ts, dt, nil
}

// newResult allocates the op's result: the one allocation a Do makes.
func newResult(dt tensor.Dtype, shape ...int) *tensor.Dense {
	return tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
}

// prealloc checks that a preallocated result has the dtype and shape the op
// produces. The TapeMachine falls back to Do when UsePreallocDo fails.
func prealloc(op gorgonia.Op, p gorgonia.Value, dt tensor.Dtype, shape ...int) (*tensor.Dense, error) {
	d, ok := p.(*tensor.Dense)
	if !ok || d.RequiresIterator() {
		return nil, fmt.Errorf("%v: %w: preallocated result is a %T", op, ErrLayout, p)
	}
	if d.Dtype() != dt {
		return nil, fmt.Errorf("%v: %w: preallocated result is %v, want %v", op, ErrDtype, d.Dtype(), dt)
	}
	s := d.Shape()
	if len(s) != len(shape) {
		return nil, fmt.Errorf("%v: %w: preallocated result has shape %v, want %v", op, ErrShape, s, shape)
	}
	for i := range s {
		if s[i] != shape[i] {
			return nil, fmt.Errorf("%v: %w: preallocated result has shape %v, want %v", op, ErrShape, s, shape)
		}
	}
	return d, nil
}

// float is the element type of every op's operands.
type float interface{ ~float32 | ~float64 }

func transpose(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// gemm32 computes c = op(a)·op(b) + beta·c for row-major contiguous
// matrices: op(a) is m×k (a is stored k×m when tA), op(b) is k×n (b is stored
// n×k when tB), c is m×n. No transpose is materialised: the flags go to BLAS.
// It runs on sgemm: OpenBLAS with the openblas build tag, else whatever
// blas32.Use installed (gonum's pure-Go BLAS by default); see BLAS. It
// panics when a slice is too short, before calling BLAS.
func gemm32(tA, tB bool, m, n, k int, a, b []float32, beta float32, c []float32) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scale(c[:m*n], beta)
		return
	}
	ra, ca, rb, cb := storedShapes(tA, tB, m, n, k)
	if len(a) < ra*ca || len(b) < rb*cb || len(c) < m*n {
		panic(fmt.Sprintf("ops: gemm %d×%d·%d×%d: slices too short: len(a)=%d len(b)=%d len(c)=%d", m, k, k, n, len(a), len(b), len(c)))
	}
	sgemm(tA, tB, m, n, k, a, ca, b, cb, beta, c, n)
}

// storedShapes gives the stored (rows, cols) of a and b for op(a) m×k and
// op(b) k×n.
func storedShapes(tA, tB bool, m, n, k int) (ra, ca, rb, cb int) {
	ra, ca, rb, cb = m, k, k, n
	if tA {
		ra, ca = k, m
	}
	if tB {
		rb, cb = n, k
	}
	return ra, ca, rb, cb
}

// gemm64 is gemm32 for float64, through blas64.
func gemm64(tA, tB bool, m, n, k int, a, b []float64, beta float64, c []float64) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scale(c[:m*n], beta)
		return
	}
	ra, ca, rb, cb := storedShapes(tA, tB, m, n, k)
	blas64.Gemm(transpose(tA), transpose(tB), 1,
		blas64.General{Rows: ra, Cols: ca, Stride: ca, Data: a},
		blas64.General{Rows: rb, Cols: cb, Stride: cb, Data: b},
		beta,
		blas64.General{Rows: m, Cols: n, Stride: n, Data: c})
}

func scale[T float](x []T, beta T) {
	if beta == 0 {
		clear(x)
		return
	}
	for i := range x {
		x[i] *= beta
	}
}
