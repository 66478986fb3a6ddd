package cuda

import (
	"fmt"
	"strings"
	"unsafe"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kairoscope/kairoscope/engine/model"
	"github.com/kairoscope/kairoscope/engine/ops"
)

// Launch geometry. Every kernel of kernels.cu is a grid-stride loop, so any
// grid computes the same result; these sizes keep a GPU busy on the model's
// extents (a 256×64 layer is 128 blocks) and the emulator, which runs a
// pthread per CUDA thread for the reductions, fast.
const (
	blockSize  = 128  // threads per block
	maxGrid    = 4096 // blocks of an elementwise launch (grid-stride beyond)
	maxRedGrid = 16   // blocks of a reduction (each adds its sums with one atomicAdd)
	floatBytes = 4
	accLen     = 5 // prob_loss's sums: Σwt·loss, Σwt, Σwt·nll, Σwt·bce, Σwt·brier
)

// elementwise returns the grid and block of a launch over n elements.
func elementwise(n int) (grid, block int) {
	return min(max(1, (n+blockSize-1)/blockSize), maxGrid), blockSize
}

// reduction returns the grid and block of a block-reduction over n rows:
// small batches get one block of a multiple of 32 threads.
func reduction(n int) (grid, block int) {
	block = min(blockSize, max(32, (n+31)/32*32))
	return min(max(1, (n+block-1)/block), maxRedGrid), block
}

// gemmCall is one cublasSgemm, in cuBLAS's column-major terms.
type gemmCall struct {
	transA, transB bool
	m, n, k        int
	a              Ptr
	lda            int
	b              Ptr
	ldb            int
	c              Ptr
	ldc            int
}

// rowMajorGemm is C = op(A)·op(B) for row-major matrices, op(A) m×k and
// op(B) k×n (A stored k×m when tA, B stored n×k when tB), C m×n. A
// row-major matrix is its transpose in column-major order, so cuBLAS
// computes Cᵀ = op(B)ᵀ·op(A)ᵀ: the operands swap, each keeps its flag, and
// every leading dimension is the stored row length.
func rowMajorGemm(tA, tB bool, m, n, k int, a, b, c Ptr) *gemmCall {
	lda, ldb := k, n // stored row lengths of A and B
	if tA {
		lda = m
	}
	if tB {
		ldb = k
	}
	return &gemmCall{transA: tB, transB: tA, m: n, n: m, k: k, a: b, lda: ldb, b: a, ldb: lda, c: c, ldc: n}
}

// step is one device op: a kernel launch or an Sgemm.
type step struct {
	text        string // one line for Steps
	kernel      string // "" for an Sgemm
	grid, block int
	args        []Arg
	gemm        *gemmCall
}

func (s *step) run(dev Device) error {
	if s.gemm != nil {
		c := s.gemm
		return dev.Sgemm(c.transA, c.transB, c.m, c.n, c.k, 1, c.a, c.lda, c.b, c.ldb, 0, c.c, c.ldc)
	}
	return dev.Launch(s.kernel, s.grid, s.block, s.args...)
}

func (s *step) line() string {
	name := s.kernel
	if s.gemm != nil {
		name = "sgemm"
	}
	return fmt.Sprintf("%-15s %s", name, s.text)
}

func launch(kernel string, grid, block int, text string, args ...Arg) step {
	return step{text: text, kernel: kernel, grid: grid, block: block, args: args}
}

// buffer is a node's device memory: a dense row-major float32 tensor.
type buffer struct {
	node  *G.Node
	name  string // for Steps
	shape tensor.Shape
	ptr   Ptr
	n     int  // floats
	acc   bool // a ProbLoss node: its buffer holds prob_loss's five sums
}

func (b *buffer) String() string {
	if b.acc || len(b.shape) == 0 {
		return b.name
	}
	dims := make([]string, len(b.shape))
	for i, d := range b.shape {
		dims[i] = fmt.Sprint(d)
	}
	return b.name + "[" + strings.Join(dims, "×") + "]"
}

// compiler interprets a model.Schedule into the device program of one
// training step (without the batch gathers and the optimiser, which the
// Executor adds around it).
type compiler struct {
	e       *Executor
	bufs    map[*G.Node]*buffer
	prog    []step
	names   map[string]int     // display names used, for uniqueness
	display map[*G.Node]string // every node's display name
	placed  map[*G.Node]Ptr    // nodes whose buffer is a slice of the parameter slab
}

func notImplemented(format string, args ...any) error {
	return fmt.Errorf("cuda: %w: %s", ErrNotImplemented, fmt.Sprintf(format, args...))
}

// name gives a node a display name unique in the program.
func (c *compiler) name(base string) string {
	c.names[base]++
	if k := c.names[base]; k > 1 {
		return fmt.Sprintf("%s'%d", base, k)
	}
	return base
}

// alloc gives n a device buffer of its shape (the executor owns it).
func (c *compiler) alloc(n *G.Node, floats int) (*buffer, error) {
	name := c.display[n]
	p, ok := c.placed[n]
	if !ok {
		var err error
		if p, err = c.e.alloc(floats, "node "+name); err != nil {
			return nil, err
		}
	}
	b := &buffer{node: n, name: name, shape: n.Shape(), ptr: p, n: floats}
	c.bufs[n] = b
	return b, nil
}

// displayNames assigns display names: inputs by their graph names, dense
// outputs h1, h2, ..., the loss "loss", gradients "d" + the name of what
// they are the gradient of, ReLU gradients dz1, dz2, ..., the rest by kind.
func (c *compiler) displayNames(s *model.Schedule) map[*G.Node]string {
	names := map[*G.Node]string{}
	for _, n := range s.Order {
		if n.IsVar() {
			names[n] = c.name(n.Name())
		}
	}
	for i, d := range s.Dense {
		names[d.Out] = c.name(fmt.Sprintf("h%d", i+1))
	}
	names[s.Loss.Loss] = c.name("loss")
	for _, n := range s.Order {
		if _, ok := names[n]; ok {
			continue
		}
		for _, of := range n.DerivOf() {
			if base, ok := names[of]; ok {
				names[n] = c.name("d" + base)
				break
			}
		}
	}
	for _, st := range s.Steps {
		n := st.Output()
		if _, ok := names[n]; ok {
			continue
		}
		switch st := st.(type) {
		case *model.ActGradStep:
			base := "z"
			if y, ok := names[st.Y]; ok && strings.HasPrefix(y, "h") {
				base += y[1:]
			}
			names[n] = c.name("d" + base)
		case *model.MatMulStep:
			names[n] = c.name("matmul")
		case *model.ColSumStep:
			names[n] = c.name("colsum")
		default:
			names[n] = c.name("c")
		}
	}
	for _, n := range s.Consts {
		if _, ok := names[n]; !ok {
			names[n] = c.name("c")
		}
	}
	return names
}

// step emits one schedule step's launches; its inputs have buffers.
func (c *compiler) step(st model.Step) error {
	in := func(n *G.Node) *buffer { return c.bufs[n] }
	if ls, ok := st.(*model.LossStep); ok {
		return c.loss(ls)
	}
	n := st.Output()
	size := n.Shape().TotalSize()
	out, err := c.alloc(n, size)
	if err != nil {
		return err
	}
	switch st := st.(type) {
	case *model.DenseStep:
		x, w, b := in(st.X), in(st.W), in(st.B)
		relu := int32(0)
		text := fmt.Sprintf("%s = %s + %s", out.name, out.name, b.name)
		switch st.Act {
		case ops.ReLU:
			relu = 1
			text = fmt.Sprintf("%s = relu(%s + %s)", out.name, out.name, b.name)
		case ops.Identity:
		default:
			return notImplemented("dense activation %v", st.Act)
		}
		c.prog = append(c.prog, step{
			text: fmt.Sprintf("%v = %v·%v", out, x, w),
			gemm: rowMajorGemm(false, false, st.Rows, st.Width, st.In, x.ptr, w.ptr, out.ptr),
		})
		grid, block := elementwise(st.Rows * st.Width)
		c.prog = append(c.prog, launch("bias_act", grid, block, text,
			out.ptr, b.ptr, int32(st.Rows), int32(st.Width), relu))
	case *model.MatMulStep:
		a, b := in(st.A), in(st.B)
		ta, tb := "", ""
		if st.TransA {
			ta = "ᵀ"
		}
		if st.TransB {
			tb = "ᵀ"
		}
		c.prog = append(c.prog, step{
			text: fmt.Sprintf("%v = %v%s·%v%s", out, a, ta, b, tb),
			gemm: rowMajorGemm(st.TransA, st.TransB, st.M, st.N, st.K, a.ptr, b.ptr, out.ptr),
		})
	case *model.ActGradStep:
		if st.Act != ops.ReLU {
			return notImplemented("activation gradient of %v", st.Act)
		}
		dy, y := in(st.DY), in(st.Y)
		grid, block := elementwise(size)
		c.prog = append(c.prog, launch("relu_grad", grid, block,
			fmt.Sprintf("%v = %s ⊙ 1[%s > 0]", out, dy.name, y.name), out.ptr, dy.ptr, y.ptr, int32(size)))
	case *model.ColSumStep:
		x := in(st.X)
		grid, block := elementwise(st.Cols)
		c.prog = append(c.prog, launch("col_sum", grid, block, fmt.Sprintf("%v = Σ_rows %v", out, x),
			out.ptr, x.ptr, int32(st.Rows), int32(st.Cols)))
	default:
		return notImplemented("schedule step %T", st)
	}
	return nil
}

// loss emits fill + prob_loss + prob_loss_grad: the loss node's buffer is
// the five sums, of which the loss is acc[0]/acc[1], and the gradient
// kernel reads Σwt from them.
func (c *compiler) loss(st *model.LossStep) error {
	o, r, wt := c.bufs[st.Out], c.bufs[st.R], c.bufs[st.WT]
	acc, err := c.alloc(st.Loss, accLen)
	if err != nil {
		return err
	}
	acc.acc = true
	d, err := c.alloc(st.Grad, st.Grad.Shape().TotalSize())
	if err != nil {
		return err
	}
	grid, block := reduction(st.Rows)
	c.prog = append(c.prog,
		launch("fill", 1, 32, fmt.Sprintf("%s[%d] = 0", acc.name, accLen), acc.ptr, float32(0), int32(accLen)),
		launch("prob_loss", grid, block,
			fmt.Sprintf("%s += Σ wt·(nll+w·bce, 1, nll, bce, brier) of %s, %s, %s (w=%g); loss = %s[0]/%s[1]",
				acc.name, o.name, r.name, wt.name, st.BCEWeight, acc.name, acc.name),
			acc.ptr, o.ptr, r.ptr, wt.ptr, int32(st.Rows), float32(st.BCEWeight)))
	grid, block = elementwise(st.Rows)
	c.prog = append(c.prog, launch("prob_loss_grad", grid, block,
		fmt.Sprintf("%v = g·wt/%s[1]·∂(nll+w·bce)/∂%s (g=%g, w=%g)", d, acc.name, o.name, st.SeedValue, st.BCEWeight),
		d.ptr, o.ptr, r.ptr, wt.ptr, acc.ptr, int32(st.Rows), float32(st.BCEWeight), st.SeedValue))
	return nil
}

// sameArray reports whether a and b are the same slice of the same array.
func sameArray(a, b []float32) bool {
	return len(a) == len(b) && (len(a) == 0 || unsafe.SliceData(a) == unsafe.SliceData(b))
}
