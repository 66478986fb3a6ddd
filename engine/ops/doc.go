// Package ops holds the model's custom Gorgonia ops: the fused
// dense+bias+activation layer and the fused Gaussian-NLL + BCE loss, each
// with its gradient ops beside it. Every op maps to one GEMM or one kernel, so
// a device implementation can sit next to its CPU Do.
//
// # Graph API
//
// Dense (and DenseNoInputGrad for a first layer fed with data) adds one
// DenseOp node; ProbLoss adds one ProbLossOp node. gorgonia.Grad then builds
// the backward pass from this package's gradient ops only:
//
//	op              operands → result                        device launch
//	DenseOp         x [N,in], w [in,out], b [out] → [N,out]  GEMM + bias/act epilogue
//	ActGradOp       dy [N,C], y [N,C] → [N,C]                elementwise
//	MatMulOp        a, b → op(a)·op(b) (TransA / TransB)     GEMM
//	ColSumOp        [N,C] → [C]                              column reduction
//	ProbLossOp      out [N,3], r [N], wt [N] → scalar        reduction
//	ProbLossGradOp  out [N,3], r [N], wt [N], g → [N,3]      reduction + elementwise
//
// A device executor recognises them with the Op interface (Kind) or a type
// switch on the exported op types, and reads their parameters through
// accessors (Activation, InputGrad, TransA, TransB, BCEWeight). Every op hashes
// all of its parameters: Gorgonia merges nodes with equal op hashes and equal
// children.
//
// Read the gradients from the nodes gorgonia.Grad returns; they are
// recomputed on every run. Gorgonia's BindDualValues instead adds each run's
// gradient to the parameter's dual value, which Reset does not clear
// (TestDualValuesAccumulate pins this). Operands must be contiguous
// row-major tensors (ErrLayout otherwise).
//
// # Plain kernels
//
// DenseForward, Softplus, Sigmoid and RowLoss are the same numerics without a
// graph, for evaluation code; MatMul, ActGrad, ColSum and ProbLossStep (the
// loss, its gradient and the batch's sums in one pass) are the other ops'
// float32 kernels, for engine/model's host program, which runs the training
// graph without the TapeMachine. They allocate nothing.
//
// # Performance notes
//
// The float32 GEMMs (not Gorgonia's BLAS setting) run on OpenBLAS's
// cblas_sgemm through cgo when built with the openblas tag (blas_openblas.go:
// libopenblas-dev to build, libopenblas.so.0 to run, one OpenBLAS thread
// unless OPENBLAS_NUM_THREADS says otherwise), and otherwise on gonum's
// blas32, so that blas32.Use swaps in another implementation; BLAS names the
// one in use. On the default model's epoch OpenBLAS is 2.7× faster than
// gonum (0.0704 → 0.0264 s, medians of 5, 2-core Xeon). float64 stays on
// blas64. Each Do allocates only its result. Gorgonia's TapeMachine clears its registers on Reset and so never
// hands these ops a preallocated result: UsePreallocDo is implemented for
// callers that drive the ops themselves, but the VM does not reach it;
// engine/model's host program calls the plain kernels on buffers it
// allocates once instead.
//
// # Imports
//
// Only Gorgonia, gorgonia.org/tensor, github.com/chewxy/hm and gonum's BLAS
// (and, with the openblas tag, cgo and libopenblas).
// It must not import gorgonia.org/cu, the cuda/ tree, or any other engine
// package: the model and the device executor depend on it, not the reverse.
package ops
