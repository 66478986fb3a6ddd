package cuda

// Ptr is a device address; 0 is the nil pointer. Its bytes are reachable
// only through a Device.
type Ptr uint64

// Dim is a launch's grid or block size in x (the kernels are 1-D).
type Dim = int

// Info describes a device for training_start and health.
type Info struct {
	Name              string `json:"name"`
	ComputeCapability string `json:"compute_capability"` // "9.0"
	TotalMemory       int64  `json:"total_memory"`
	// BLAS is the GEMM library, e.g. "cuBLAS 13.0.2 (libcublas.so.13, for
	// CUDA 13.0)"; Driver the CUDA version the driver supports. Empty on
	// the emulator.
	BLAS   string `json:"blas,omitempty"`
	Driver string `json:"driver,omitempty"`
}

// Arg is a kernel argument: a Ptr, an int32 or a float32. Other types are
// refused with ErrBadArgument (cu copies 8 bytes per argument, so each is
// passed through an 8-byte holder).
type Arg any

// Device is where a graph runs. Every method is called from one goroutine
// at a time (the executor's); implementations need not be safe for
// concurrent use. Errors are typed (errors.go): *MemError for out of memory,
// *Error for any other CUDA or cuBLAS failure, ErrNotImplemented for a
// kernel the device does not have (it never falls back to the CPU
// silently).
type Device interface {
	Info() Info

	// Alloc returns bytes of uninitialised device memory.
	Alloc(bytes int64) (Ptr, error)
	// Free releases memory from Alloc; Free(0) is a no-op.
	Free(p Ptr) error

	// CopyIn copies host values to dst (host to device). On real hardware
	// a copy from pageable Go memory waits for the queued work, so callers
	// copy once per fold or epoch, never per step. dst may point inside an
	// allocation; the copy must fit in it.
	CopyIn(dst Ptr, src []float32) error
	// CopyInInt32 copies host indices to dst.
	CopyInInt32(dst Ptr, src []int32) error
	// CopyOut copies from src to host values (device to host). It waits for
	// the work queued before it: a host sync, counted as one.
	CopyOut(dst []float32, src Ptr) error

	// Launch runs kernel name (an entry of kernels/*.cu) on a 1-D grid.
	// Outputs may not overlap inputs, except the identical range of an
	// in-place elementwise kernel. An illegal address is sticky: the
	// context is lost and every later call fails, as on a GPU.
	Launch(name string, grid, block Dim, args ...Arg) error
	// Sgemm is cuBLAS's column-major C = alpha·op(A)·op(B) + beta·C with
	// op(A) m×k, op(B) k×n and C m×n. Row-major callers swap operands (see
	// the executor).
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a Ptr, lda int, b Ptr, ldb int, beta float32, c Ptr, ldc int) error

	// Synchronize waits for all queued work: a host sync.
	Synchronize() error
	// MemInfo reports free and total device memory in bytes.
	MemInfo() (free, total int64, err error)
	// Close releases the device and everything allocated on it.
	Close() error
}
