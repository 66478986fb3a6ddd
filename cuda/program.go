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

// compiler turns the reversed topological order of a graph into the device
// program of one training step (without the batch gathers and the
// optimiser, which the Executor adds around it).
type compiler struct {
	e       *Executor
	roles   map[*G.Node]string // input nodes: "x", "r", "wt" or "param"
	bufs    map[*G.Node]*buffer
	emitted map[*G.Node]bool // ProbLoss nodes whose launches are in prog
	prog    []step
	dense   []*G.Node          // DenseOp nodes in execution order
	loss    *G.Node            // the ProbLoss node the first ProbLossGrad reads
	names   map[string]int     // display names used, for uniqueness
	display map[*G.Node]string // every node's display name
	placed  map[*G.Node]Ptr    // nodes whose buffer is a slice of the parameter slab
}

// isStatement reports whether n is one of Gorgonia's statement nodes that
// run on the host between ops. Only Read ("print") is accepted: the
// TapeMachine copies a value out there, and the executor reads its device
// buffers itself (NodeValue). Gorgonia exports no test for statements, so
// this looks at what it does export: a statement's op has no type.
func isRead(n *G.Node) bool {
	op := n.Op()
	return op != nil && op.Type() == nil && op.String() == "print" && len(model.Operands(n.Graph(), n)) == 1
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
func (c *compiler) alloc(n *G.Node, name string, floats int) (*buffer, error) {
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

// displayNames assigns display names: inputs by their graph names, dense outputs
// h1, h2, ..., the loss "loss", gradients "d" + the name of what they are
// the gradient of, the rest by kind.
func (c *compiler) displayNames(order G.Nodes) map[*G.Node]string {
	names := map[*G.Node]string{}
	layer := 0
	for _, n := range order {
		switch {
		case n.IsVar():
			names[n] = c.name(n.Name())
		case isOp[ops.DenseOp](n):
			layer++
			names[n] = c.name(fmt.Sprintf("h%d", layer))
		case isOp[ops.ProbLossOp](n):
			names[n] = c.name("loss")
		}
	}
	for _, n := range order {
		if _, ok := names[n]; ok || isRead(n) {
			continue
		}
		for _, of := range n.DerivOf() {
			if base, ok := names[of]; ok {
				names[n] = c.name("d" + base)
				break
			}
		}
		if _, ok := names[n]; ok {
			continue
		}
		switch op := n.Op().(type) {
		case ops.ActGradOp:
			base := "z"
			if y, ok := names[model.Operands(c.e.g, n)[1]]; ok && strings.HasPrefix(y, "h") {
				base += y[1:]
			}
			names[n] = c.name("d" + base)
		case ops.Op:
			names[n] = c.name(strings.ToLower(op.Kind().String()))
		default:
			names[n] = c.name("c")
		}
	}
	return names
}

func isOp[T ops.Op](n *G.Node) bool {
	_, ok := n.Op().(T)
	return ok
}

// compile walks the graph in execution order and emits each op node's
// launches. Inputs and constants must already have buffers.
func (c *compiler) compile(order G.Nodes) error {
	for _, n := range order {
		if _, done := c.bufs[n]; done || isRead(n) {
			continue
		}
		op, ok := n.Op().(ops.Op)
		if !ok {
			return notImplemented("graph node %v (op %v, %T) has no device implementation", n, n.Op(), n.Op())
		}
		if n.Dtype() != tensor.Float32 {
			return notImplemented("node %v is %v: the device runs float32 graphs", n, n.Dtype())
		}
		for _, ch := range model.Operands(c.e.g, n) {
			if _, ok := c.bufs[ch]; !ok {
				return fmt.Errorf("cuda: node %v reads %v before it is computed", n, ch)
			}
		}
		if err := c.node(n, op); err != nil {
			return err
		}
	}
	return nil
}

func (c *compiler) node(n *G.Node, op ops.Op) error {
	ch := model.Operands(c.e.g, n)
	in := func(i int) *buffer { return c.bufs[ch[i]] }
	if isOp[ops.ProbLossOp](n) {
		return c.probLoss(n)
	}
	name := c.display[n]
	size := n.Shape().TotalSize()
	out, err := c.alloc(n, name, size)
	if err != nil {
		return err
	}
	switch op := op.(type) {
	case ops.DenseOp:
		x, w, b := in(0), in(1), in(2)
		rows, width, outW := x.shape[0], x.shape[1], w.shape[1]
		relu := int32(0)
		text := fmt.Sprintf("%s = %s + %s", out.name, out.name, b.name)
		switch op.Activation() {
		case ops.ReLU:
			relu = 1
			text = fmt.Sprintf("%s = relu(%s + %s)", out.name, out.name, b.name)
		case ops.Identity:
		default:
			return notImplemented("dense activation %v", op.Activation())
		}
		c.prog = append(c.prog, step{
			text: fmt.Sprintf("%v = %v·%v", out, x, w),
			gemm: rowMajorGemm(false, false, rows, outW, width, x.ptr, w.ptr, out.ptr),
		})
		grid, block := elementwise(rows * outW)
		c.prog = append(c.prog, launch("bias_act", grid, block, text,
			out.ptr, b.ptr, int32(rows), int32(outW), relu))
		c.dense = append(c.dense, n)
	case ops.MatMulOp:
		a, b := in(0), in(1)
		m, k := a.shape[0], a.shape[1]
		ta, tb := "", ""
		if op.TransA() {
			m, k, ta = k, m, "ᵀ"
		}
		nn := b.shape[1]
		if op.TransB() {
			nn, tb = b.shape[0], "ᵀ"
		}
		c.prog = append(c.prog, step{
			text: fmt.Sprintf("%v = %v%s·%v%s", out, a, ta, b, tb),
			gemm: rowMajorGemm(op.TransA(), op.TransB(), m, nn, k, a.ptr, b.ptr, out.ptr),
		})
	case ops.ActGradOp:
		if op.Activation() != ops.ReLU {
			return notImplemented("activation gradient of %v", op.Activation())
		}
		dy, y := in(0), in(1)
		grid, block := elementwise(size)
		c.prog = append(c.prog, launch("relu_grad", grid, block,
			fmt.Sprintf("%v = %s ⊙ 1[%s > 0]", out, dy.name, y.name), out.ptr, dy.ptr, y.ptr, int32(size)))
	case ops.ColSumOp:
		x := in(0)
		grid, block := elementwise(x.shape[1])
		c.prog = append(c.prog, launch("col_sum", grid, block, fmt.Sprintf("%v = Σ_rows %v", out, x),
			out.ptr, x.ptr, int32(x.shape[0]), int32(x.shape[1])))
	case ops.ProbLossGradOp:
		return c.probLossGrad(n, op, out)
	default:
		return notImplemented("op %v (kind %v)", op, op.Kind())
	}
	return nil
}

// probLoss emits fill + prob_loss for a ProbLoss node, once: its buffer is
// the five sums, of which the loss is acc[0]/acc[1].
func (c *compiler) probLoss(n *G.Node) error {
	if c.emitted[n] {
		return nil
	}
	name := c.display[n]
	op := n.Op().(ops.ProbLossOp)
	ch := model.Operands(c.e.g, n)
	out, r, wt := c.bufs[ch[0]], c.bufs[ch[1]], c.bufs[ch[2]]
	acc, err := c.alloc(n, name, accLen)
	if err != nil {
		return err
	}
	acc.acc = true
	rows := out.shape[0]
	grid, block := reduction(rows)
	c.prog = append(c.prog,
		launch("fill", 1, 32, fmt.Sprintf("%s[%d] = 0", acc.name, accLen), acc.ptr, float32(0), int32(accLen)),
		launch("prob_loss", grid, block,
			fmt.Sprintf("%s += Σ wt·(nll+w·bce, 1, nll, bce, brier) of %s, %s, %s (w=%g); loss = %s[0]/%s[1]",
				acc.name, out.name, r.name, wt.name, op.BCEWeight(), acc.name, acc.name),
			acc.ptr, out.ptr, r.ptr, wt.ptr, int32(rows), float32(op.BCEWeight())))
	c.emitted[n] = true
	if c.loss == nil {
		c.loss = n
	}
	return nil
}

// probLossGrad emits prob_loss_grad. The kernel reads Σwt from the sums of
// the ProbLoss node over the same operands, which the graph does not link
// to the gradient node: that node's launches are emitted first if the
// topological order has not reached them yet.
func (c *compiler) probLossGrad(n *G.Node, op ops.ProbLossGradOp, out *buffer) error {
	ch := model.Operands(c.e.g, n)
	var loss *G.Node
	for _, cand := range c.e.g.AllNodes() {
		lop, ok := cand.Op().(ops.ProbLossOp)
		cc := model.Operands(c.e.g, cand)
		if ok && lop.BCEWeight() == op.BCEWeight() && cc[0] == ch[0] && cc[1] == ch[1] && cc[2] == ch[2] {
			loss = cand
			break
		}
	}
	if loss == nil {
		return notImplemented("%v without the ProbLoss node of its operands (the kernel reads its Σwt)", n)
	}
	if err := c.probLoss(loss); err != nil {
		return err
	}
	g := ch[3]
	if !model.IsConstant(g) {
		return notImplemented("%v: the upstream gradient %v is computed on the device; only a constant seed is supported", n, g)
	}
	gv, ok := model.Float32s(g.Value())
	if !ok || len(gv) != 1 {
		return notImplemented("%v: upstream gradient value %v", n, g.Value())
	}
	o, r, wt, acc := c.bufs[ch[0]], c.bufs[ch[1]], c.bufs[ch[2]], c.bufs[loss]
	rows := o.shape[0]
	grid, block := elementwise(rows)
	c.prog = append(c.prog, launch("prob_loss_grad", grid, block,
		fmt.Sprintf("%v = g·wt/%s[1]·∂(nll+w·bce)/∂%s (g=%g, w=%g)", out, acc.name, o.name, gv[0], op.BCEWeight()),
		out.ptr, o.ptr, r.ptr, wt.ptr, acc.ptr, int32(rows), float32(op.BCEWeight()), gv[0]))
	return nil
}

// sameArray reports whether a and b are the same slice of the same array.
func sameArray(a, b []float32) bool {
	return len(a) == len(b) && (len(a) == 0 || unsafe.SliceData(a) == unsafe.SliceData(b))
}
