//go:build gpu

package cuda

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/kairoscope/kairoscope/cuda/cublas"
	"github.com/kairoscope/kairoscope/cuda/kernels"
)

// GPU is a real NVIDIA device through gorgonia.org/cu, with cuBLAS loaded at
// run time (package cuda/cublas). Linking this file makes a binary need
// libcuda.so.1, and only that CUDA library, at load time, and exit in cu's
// init when there is no GPU: only cmd/kairoscope-cuda links it, and the
// server falls back to the CPU worker when it dies before its first message.
type GPU struct {
	ctx  *cu.Ctx // runs every call on one OS-locked thread with the context current
	mod  cu.Module
	fns  map[string]cu.Function
	lib  *cublas.Library
	blas *cublas.Handle // created and used on ctx's thread only
	info Info
}

var _ Device = (*GPU)(nil)

// GPUOptions configures OpenGPU.
type GPUOptions struct {
	// CUBLAS is the cuBLAS library to load, a path or a soname; "" tries
	// cublas.Sonames (the worker passes $KAIROSCOPE_CUBLAS).
	CUBLAS string
}

// OpenGPU opens device ordinal, loads cuBLAS (checked against the driver's
// CUDA version) and the embedded PTX. A missing or unusable cuBLAS is an
// error matching cublas.ErrNoCUBLAS that lists every library tried, returned
// before any context is made.
func OpenGPU(ordinal int, opt GPUOptions) (*GPU, error) {
	driver := cu.Version()
	lib, err := cublas.Load(cublas.Options{Path: opt.CUBLAS, DriverVersion: driver})
	if err != nil {
		return nil, fmt.Errorf("cuda: loading cuBLAS for driver CUDA %s: %w", cublas.VersionText(driver), err)
	}
	n, err := cu.NumDevices()
	if err != nil {
		return nil, check("cuDeviceGetCount", err)
	}
	if n <= ordinal {
		return nil, &Error{Op: "cuDeviceGet", Result: fmt.Sprintf("%d devices, no device %d", n, ordinal), Err: ErrNoDevice}
	}
	d, err := cu.GetDevice(ordinal)
	if err != nil {
		return nil, check("cuDeviceGet", err)
	}
	name, _ := d.Name()
	major, minor, _ := d.ComputeCapability()
	g := &GPU{ctx: cu.NewContext(d, cu.SchedAuto), fns: map[string]cu.Function{}, lib: lib}
	_, total, err := g.ctx.MemInfo()
	if err != nil {
		g.ctx.Close()
		return nil, check("cuMemGetInfo", err)
	}
	g.info = Info{Name: name, ComputeCapability: fmt.Sprintf("%d.%d", major, minor), TotalMemory: total,
		BLAS: lib.String(), Driver: "CUDA " + cublas.VersionText(driver)}
	// cu.LoadData and cublasCreate bind to the context current on the
	// calling thread: run them on the context's own.
	// (Errors are mapped after Do returns: mapping reads MemInfo, itself a
	// call on that thread.)
	var blasErr error
	err = g.ctx.Do(func() error {
		var err error
		if g.mod, err = cu.LoadData(kernels.PTX); err != nil {
			return check("cuModuleLoadData", err)
		}
		if g.blas, blasErr = lib.Create(); blasErr != nil {
			return nil
		}
		blasErr = g.blas.SetStream(0) // the default stream, where the kernels run
		return nil
	})
	if err == nil && blasErr != nil {
		err = fmt.Errorf("%w (with %v)", blasError(g, "cuBLAS setup", blasErr), lib)
	}
	if err != nil {
		g.Close()
		return nil, err
	}
	for _, k := range kernels.Names {
		fn, err := g.ctx.ModuleFunction(g.mod, k)
		if err != nil {
			g.Close()
			return nil, check("cuModuleGetFunction "+k, err)
		}
		g.fns[k] = fn
	}
	return g, nil
}

func (g *GPU) Info() Info { return g.info }

func (g *GPU) Alloc(bytes int64) (Ptr, error) {
	p, err := g.ctx.MemAlloc(bytes)
	if err != nil {
		if errors.Is(err, cu.OutOfMemory) {
			free, total, _ := g.ctx.MemInfo()
			return 0, &MemError{Op: "alloc", Requested: bytes, Free: free, Total: total}
		}
		return 0, check("cuMemAlloc", err)
	}
	return Ptr(p), nil
}

func (g *GPU) Free(p Ptr) error {
	if p == 0 {
		return nil
	}
	g.ctx.MemFree(cu.DevicePtr(p))
	return check("cuMemFree", g.ctx.Error())
}

func (g *GPU) CopyIn(dst Ptr, src []float32) error {
	if len(src) == 0 {
		return nil
	}
	g.ctx.MemcpyHtoD(cu.DevicePtr(dst), unsafe.Pointer(&src[0]), int64(4*len(src)))
	return check("cuMemcpyHtoD", g.ctx.Error())
}

func (g *GPU) CopyInInt32(dst Ptr, src []int32) error {
	if len(src) == 0 {
		return nil
	}
	g.ctx.MemcpyHtoD(cu.DevicePtr(dst), unsafe.Pointer(&src[0]), int64(4*len(src)))
	return check("cuMemcpyHtoD", g.ctx.Error())
}

func (g *GPU) CopyOut(dst []float32, src Ptr) error {
	if len(dst) == 0 {
		return nil
	}
	g.ctx.MemcpyDtoH(unsafe.Pointer(&dst[0]), cu.DevicePtr(src), int64(4*len(dst)))
	return check("cuMemcpyDtoH", g.ctx.Error())
}

// Launch passes every argument through an 8-byte holder: cu's LaunchKernel
// copies 8 bytes from each kernelParams entry.
func (g *GPU) Launch(name string, grid, block Dim, args ...Arg) error {
	fn, ok := g.fns[name]
	if !ok {
		return fmt.Errorf("kernel %q: %w", name, ErrNotImplemented)
	}
	params := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		var u uint64
		switch v := a.(type) {
		case Ptr:
			u = uint64(v)
		case int32:
			u = uint64(uint32(v))
		case int:
			if v < math.MinInt32 || v > math.MaxInt32 {
				return fmt.Errorf("kernel %s argument %d: %d overflows int32: %w", name, i, v, ErrBadArgument)
			}
			u = uint64(uint32(int32(v)))
		case float32:
			u = uint64(math.Float32bits(v))
		default:
			return fmt.Errorf("kernel %s argument %d: %T: %w", name, i, a, ErrBadArgument)
		}
		params[i] = unsafe.Pointer(&u)
	}
	g.ctx.LaunchKernel(fn, grid, 1, 1, block, 1, 1, 0, cu.NoStream, params)
	return check("launch "+name, g.ctx.Error())
}

func (g *GPU) Sgemm(transA, transB bool, m, n, k int, alpha float32, a Ptr, lda int, b Ptr, ldb int, beta float32, c Ptr, ldc int) error {
	err := g.ctx.Do(func() error {
		return g.blas.Sgemm(transA, transB, m, n, k, alpha, uintptr(a), lda, uintptr(b), ldb, beta, uintptr(c), ldc)
	})
	if err != nil {
		return blasError(g, "cublasSgemm", err)
	}
	return nil
}

// blasError maps a cuBLAS status: out of memory is a *MemError, anything
// else an *Error with ErrBLAS.
func blasError(g *GPU, op string, err error) error {
	if errors.Is(err, cublas.StatusAllocFailed) {
		free, total, _ := g.ctx.MemInfo()
		return &MemError{Op: op, Free: free, Total: total}
	}
	return &Error{Op: op, Result: err.Error(), Err: ErrBLAS,
		Hint: "a failed cuBLAS call may leave the context unusable: the worker must restart"}
}

func (g *GPU) Synchronize() error {
	g.ctx.Synchronize()
	return check("cuCtxSynchronize", g.ctx.Error())
}

func (g *GPU) MemInfo() (free, total int64, err error) {
	free, total, err = g.ctx.MemInfo()
	return free, total, check("cuMemGetInfo", err)
}

func (g *GPU) Close() error {
	var errs []error
	if g.blas != nil {
		errs = append(errs, g.ctx.Do(func() error { return g.blas.Destroy() }))
	}
	return errors.Join(append(errs, g.ctx.Close())...)
}

// check maps a cu result to the package's errors, with what a person can do.
func check(op string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Result: err.Error(), Err: ErrLaunch}
	switch {
	case errors.Is(err, cu.OutOfMemory):
		return &MemError{Op: op}
	case errors.Is(err, cu.NoDevice), errors.Is(err, cu.NotInitialized):
		e.Err, e.Hint = ErrNoDevice, "no usable NVIDIA GPU or driver; run with --gpus all, or use the CPU worker"
	case errors.Is(err, cu.IllegalAddress):
		e.Err, e.Hint = ErrIllegalAddress, "a kernel touched memory outside its buffers; the CUDA context is lost until the worker restarts"
	case errors.Is(err, cu.LaunchOutOfResources):
		e.Hint = "the launch asked for more registers or threads than the GPU has; lower --batch-size"
	case errors.Is(err, cu.InvalidPtx):
		e.Hint = "the driver cannot compile the embedded PTX; update the NVIDIA driver"
	case errors.Is(err, cu.LaunchFailed):
		e.Hint = "the kernel failed; the CUDA context is lost until the worker restarts"
	}
	return e
}
