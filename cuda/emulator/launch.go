package emulator

// #cgo CXXFLAGS: -std=c++17 -O2
// #cgo LDFLAGS: -lpthread -lm
// #include "emu.h"
import "C"

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/kairoscope/kairoscope/cuda"
	"github.com/kairoscope/kairoscope/cuda/kernels"
)

const (
	// maxBlock is CUDA's limit on threads per block, and the size of the
	// kernels' shared arrays (KS_MAX_BLOCK).
	maxBlock = 1024
	// maxThreads bounds grid·block: the emulator visits every thread even
	// when the grid-stride loop gives it nothing to do.
	maxThreads = 1 << 24
)

// launchMu serialises launches across all emulators: emu.cpp's launch state
// (mode, barrier, blockDim, gridDim) and the kernels' static __shared__
// arrays are process-wide.
var launchMu sync.Mutex

// access says what a kernel does with a parameter.
type access uint8

const (
	scalar access = iota // not a pointer
	rd                   // read only
	wr                   // written (and maybe read)
)

// value is one converted launch argument.
type value struct {
	ptr cuda.Ptr
	i   int32
	f   float32
}

// int returns the int32 argument as an int64.
func (v value) int() int64 { return int64(v.i) }

// spec is what the emulator knows about one kernel of kernels.cu beyond its
// signature (kernels.Signature).
type spec struct {
	access []access // per parameter
	// sync: the kernel calls __syncthreads, so it runs in EMU_PAR mode.
	sync bool
	// inPlace: elementwise, so a written argument may be exactly (same
	// start, same length) a read one.
	inPlace bool
	// extents returns, per parameter, how many 4-byte words from the
	// pointer the kernel touches (0 for scalars), from the scalar arguments
	// and, for the gathers, from the indices (which ints reads from the
	// device, checked). An error from argError is a bad argument; any other
	// error an illegal address.
	extents func(v []value, ints func(param int, n int64) ([]int32, error)) ([]int64, error)
	// run calls the kernel's launcher in emu.cpp with the host addresses p.
	run func(mode, grid, block C.int, p []unsafe.Pointer, v []value) C.int
}

// argError is a size or count the kernel cannot take.
type argError struct{ msg string }

func (e *argError) Error() string { return e.msg }

func badArg(format string, a ...any) error { return &argError{fmt.Sprintf(format, a...)} }

// dims checks that the named int arguments are ≥ 0.
func dims(v []value, names []string, params ...int) error {
	for _, p := range params {
		if v[p].i < 0 {
			return badArg("%s = %d is negative", names[p], v[p].i)
		}
	}
	return nil
}

// product returns a·b, failing when it leaves int32 (the kernels index
// with int).
func product(a, b int64, what string) (int64, error) {
	if a*b > maxInt32 {
		return 0, badArg("%s = %d·%d = %d overflows the kernels' int indices", what, a, b, a*b)
	}
	return a * b, nil
}

// gatherExtent checks idx[0..nValid) against [0, 2^31) and returns
// (max idx + 1)·width, the words of the gathered array the kernel reads.
func gatherExtent(idx []int32, width int64, src string) (int64, error) {
	var hi int64
	for k, i := range idx {
		if i < 0 {
			return 0, fmt.Errorf("idx[%d] = %d: a negative row of %s", k, i, src)
		}
		hi = max(hi, int64(i)+1)
	}
	return product(hi, width, src+" extent (max idx + 1)·width")
}

func f(p unsafe.Pointer) *C.float { return (*C.float)(p) }

// table is every kernel of kernels.cu. Keys must equal kernels.Names
// (TestTableMatchesKernels).
var table = map[string]spec{
	"bias_act": {
		access: []access{wr, rd, scalar, scalar, scalar},
		extents: func(v []value, _ func(int, int64) ([]int32, error)) ([]int64, error) {
			names := []string{"y", "b", "rows", "cols", "relu"}
			if err := dims(v, names, 2, 3); err != nil {
				return nil, err
			}
			n, err := product(v[2].int(), v[3].int(), "rows·cols")
			var nb int64
			if n > 0 {
				nb = v[3].int()
			}
			return []int64{n, nb, 0, 0, 0}, err
		},
		run: func(mode, grid, block C.int, p []unsafe.Pointer, v []value) C.int {
			return C.emu_bias_act(mode, grid, block, f(p[0]), f(p[1]), C.int(v[2].i), C.int(v[3].i), C.int(v[4].i))
		},
	},
	"relu_grad": {
		access: []access{wr, rd, rd, scalar}, inPlace: true,
		extents: func(v []value, _ func(int, int64) ([]int32, error)) ([]int64, error) {
			if err := dims(v, []string{"dz", "dy", "y", "n"}, 3); err != nil {
				return nil, err
			}
			n := v[3].int()
			return []int64{n, n, n, 0}, nil
		},
		run: func(mode, grid, block C.int, p []unsafe.Pointer, v []value) C.int {
			return C.emu_relu_grad(mode, grid, block, f(p[0]), f(p[1]), f(p[2]), C.int(v[3].i))
		},
	},
	"col_sum": {
		access: []access{wr, rd, scalar, scalar},
		extents: func(v []value, _ func(int, int64) ([]int32, error)) ([]int64, error) {
			if err := dims(v, []string{"out", "x", "rows", "cols"}, 2, 3); err != nil {
				return nil, err
			}
			n, err := product(v[2].int(), v[3].int(), "rows·cols")
			return []int64{v[3].int(), n, 0, 0}, err
		},
		run: func(mode, grid, block C.int, p []unsafe.Pointer, v []value) C.int {
			return C.emu_col_sum(mode, grid, block, f(p[0]), f(p[1]), C.int(v[2].i), C.int(v[3].i))
		},
	},
	"prob_loss": {
		access: []access{wr, rd, rd, rd, scalar, scalar}, sync: true,
		extents: func(v []value, _ func(int, int64) ([]int32, error)) ([]int64, error) {
			if err := dims(v, []string{"acc", "out", "r", "wt", "n", "bce_w"}, 4); err != nil {
				return nil, err
			}
			n := v[4].int()
			n3, err := product(n, 3, "3·n")
			return []int64{5, n3, n, n, 0, 0}, err
		},
		run: func(mode, grid, block C.int, p []unsafe.Pointer, v []value) C.int {
			return C.emu_prob_loss(mode, grid, block, f(p[0]), f(p[1]), f(p[2]), f(p[3]), C.int(v[4].i), C.float(v[5].f))
		},
	},
	"prob_loss_grad": {
		access: []access{wr, rd, rd, rd, rd, scalar, scalar, scalar},
		extents: func(v []value, _ func(int, int64) ([]int32, error)) ([]int64, error) {
			if err := dims(v, []string{"d", "out", "r", "wt", "acc", "n", "bce_w", "g"}, 5); err != nil {
				return nil, err
			}
			n := v[5].int()
			n3, err := product(n, 3, "3·n")
			var nacc int64
			if n > 0 {
				nacc = 2 // acc[1]
			}
			return []int64{n3, n3, n, n, nacc, 0, 0, 0}, err
		},
		run: func(mode, grid, block C.int, p []unsafe.Pointer, v []value) C.int {
			return C.emu_prob_loss_grad(mode, grid, block, f(p[0]), f(p[1]), f(p[2]), f(p[3]), f(p[4]),
				C.int(v[5].i), C.float(v[6].f), C.float(v[7].f))
		},
	},
	"adam_update": {
		access: []access{wr, rd, wr, wr, scalar, scalar, scalar, scalar, scalar, scalar},
		extents: func(v []value, _ func(int, int64) ([]int32, error)) ([]int64, error) {
			names := []string{"w", "g", "m", "v", "step_size", "b1", "b2", "eps", "bc2_sqrt", "n"}
			if err := dims(v, names, 9); err != nil {
				return nil, err
			}
			n := v[9].int()
			return []int64{n, n, n, n, 0, 0, 0, 0, 0, 0}, nil
		},
		run: func(mode, grid, block C.int, p []unsafe.Pointer, v []value) C.int {
			return C.emu_adam_update(mode, grid, block, f(p[0]), f(p[1]), f(p[2]), f(p[3]),
				C.float(v[4].f), C.float(v[5].f), C.float(v[6].f), C.float(v[7].f), C.float(v[8].f), C.int(v[9].i))
		},
	},
	"gather_rows": {
		access: []access{wr, rd, rd, scalar, scalar, scalar},
		extents: func(v []value, ints func(int, int64) ([]int32, error)) ([]int64, error) {
			names := []string{"dst", "src", "idx", "rows", "cols", "n_valid"}
			if err := dims(v, names, 3, 4, 5); err != nil {
				return nil, err
			}
			rows, cols, nValid := v[3].int(), v[4].int(), v[5].int()
			if nValid > rows {
				return nil, badArg("n_valid = %d exceeds rows = %d", nValid, rows)
			}
			n, err := product(rows, cols, "rows·cols")
			if err != nil || n == 0 {
				return []int64{0, 0, 0, 0, 0, 0}, err
			}
			idx, err := ints(2, nValid)
			if err != nil {
				return nil, err
			}
			ns, err := gatherExtent(idx, cols, "src")
			return []int64{n, ns, nValid, 0, 0, 0}, err
		},
		run: func(mode, grid, block C.int, p []unsafe.Pointer, v []value) C.int {
			return C.emu_gather_rows(mode, grid, block, f(p[0]), f(p[1]), (*C.int)(p[2]),
				C.int(v[3].i), C.int(v[4].i), C.int(v[5].i))
		},
	},
	"gather_targets": {
		access: []access{wr, wr, rd, rd, scalar, scalar},
		extents: func(v []value, ints func(int, int64) ([]int32, error)) ([]int64, error) {
			if err := dims(v, []string{"r", "wt", "y", "idx", "rows", "n_valid"}, 4, 5); err != nil {
				return nil, err
			}
			rows, nValid := v[4].int(), v[5].int()
			if nValid > rows {
				return nil, badArg("n_valid = %d exceeds rows = %d", nValid, rows)
			}
			idx, err := ints(3, nValid)
			if err != nil {
				return nil, err
			}
			ny, err := gatherExtent(idx, 1, "y")
			return []int64{rows, rows, ny, nValid, 0, 0}, err
		},
		run: func(mode, grid, block C.int, p []unsafe.Pointer, v []value) C.int {
			return C.emu_gather_targets(mode, grid, block, f(p[0]), f(p[1]), f(p[2]), (*C.int)(p[3]),
				C.int(v[4].i), C.int(v[5].i))
		},
	},
	"fill": {
		access: []access{wr, scalar, scalar}, inPlace: true,
		extents: func(v []value, _ func(int, int64) ([]int32, error)) ([]int64, error) {
			if err := dims(v, []string{"x", "v", "n"}, 2); err != nil {
				return nil, err
			}
			return []int64{v[2].int(), 0, 0}, nil
		},
		run: func(mode, grid, block C.int, p []unsafe.Pointer, v []value) C.int {
			return C.emu_fill(mode, grid, block, f(p[0]), C.float(v[1].f), C.int(v[2].i))
		},
	},
	"add_into": {
		access: []access{wr, rd, scalar}, inPlace: true,
		extents: func(v []value, _ func(int, int64) ([]int32, error)) ([]int64, error) {
			if err := dims(v, []string{"dst", "src", "n"}, 2); err != nil {
				return nil, err
			}
			n := v[2].int()
			return []int64{n, n, 0}, nil
		},
		run: func(mode, grid, block C.int, p []unsafe.Pointer, v []value) C.int {
			return C.emu_add_into(mode, grid, block, f(p[0]), f(p[1]), C.int(v[2].i))
		},
	},
}

// convert checks args against the kernel's signature.
func convert(sig []kernels.Param, args []cuda.Arg) ([]value, error) {
	if len(args) != len(sig) {
		return nil, badArg("%d arguments for %d parameters %v", len(args), len(sig), sig)
	}
	v := make([]value, len(args))
	for i, a := range args {
		p := sig[i]
		ok := false
		switch x := a.(type) {
		case cuda.Ptr:
			v[i].ptr, ok = x, p.Kind == kernels.Ptr
		case int32:
			v[i].i, ok = x, p.Kind == kernels.Int32
		case int:
			if p.Kind == kernels.Int32 && (x < math.MinInt32 || x > math.MaxInt32) {
				return nil, badArg("argument %d (%s) = %d does not fit an int32", i, p.Name, x)
			}
			v[i].i, ok = int32(x), p.Kind == kernels.Int32
		case float32:
			v[i].f, ok = x, p.Kind == kernels.Float32
		}
		if !ok {
			want := map[kernels.Kind]string{kernels.Ptr: "a cuda.Ptr", kernels.Int32: "an int32 or int",
				kernels.Float32: "a float32"}[p.Kind]
			return nil, badArg("argument %d (%s) must be %s, got %T(%v)", i, p.Name, want, a, a)
		}
	}
	return v, nil
}

// Launch runs kernel name of kernels.cu on a 1-D grid after checking its
// arguments (see the package comment). Errors: cuda.ErrNotImplemented for a
// name that is not a kernel; cuda.ErrLaunch for a bad grid or block;
// cuda.ErrBadArgument for an argument of the wrong type, a bad size or
// overlapping outputs; cuda.ErrIllegalAddress (sticky) for a pointer range
// outside its allocation. Each is a *cuda.Error whose Op is "launch name".
func (e *Emulator) Launch(name string, grid, block cuda.Dim, args ...cuda.Arg) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	op := "launch " + name
	if err := e.usable(op); err != nil {
		return err
	}
	k, ok := table[name]
	sig, ok2 := kernels.Signature(name)
	if !ok || !ok2 {
		return &cuda.Error{Op: op, Result: "CUDA_ERROR_NOT_FOUND",
			Hint: "kernels.cu has no such kernel (see kernels.Names)", Err: cuda.ErrNotImplemented}
	}
	if block < 1 || block > maxBlock || grid < 1 || grid > maxInt32 {
		return &cuda.Error{Op: op, Result: "CUDA_ERROR_INVALID_VALUE",
			Hint: fmt.Sprintf("grid %d, block %d: want 1 ≤ block ≤ %d and 1 ≤ grid < 2^31", grid, block, maxBlock),
			Err:  cuda.ErrLaunch}
	}
	threads := int64(grid) * int64(block)
	if threads > maxThreads {
		return &cuda.Error{Op: op, Result: "EMULATOR_LIMIT",
			Hint: fmt.Sprintf("grid·block = %d threads; the emulator runs at most %d (use a grid-stride grid)", threads, maxThreads),
			Err:  cuda.ErrLaunch}
	}
	bad := func(err error) error {
		return &cuda.Error{Op: op, Result: "CUDA_ERROR_INVALID_VALUE", Hint: err.Error(), Err: cuda.ErrBadArgument}
	}
	illegal := func(err error) error {
		return e.poison(&cuda.Error{Op: op, Result: "CUDA_ERROR_ILLEGAL_ADDRESS", Hint: err.Error(), Err: cuda.ErrIllegalAddress})
	}
	v, err := convert(sig, args)
	if err != nil {
		return bad(err)
	}
	ints := func(param int, n int64) ([]int32, error) {
		s, err := e.span(v[param].ptr, n, sig[param].Name)
		return asInt32s(s), err
	}
	ext, err := k.extents(v, ints)
	if err != nil {
		if _, ok := errors.AsType[*argError](err); ok {
			return bad(err)
		}
		return illegal(err)
	}
	p := make([]unsafe.Pointer, len(v))
	for i, n := range ext {
		if k.access[i] == scalar {
			continue
		}
		if n+threads > maxInt32 {
			return bad(fmt.Errorf("%s spans %d words: with %d threads the kernels' int indices overflow", sig[i].Name, n, threads))
		}
		s, err := e.span(v[i].ptr, n, sig[i].Name)
		if err != nil {
			return illegal(err)
		}
		if len(s) > 0 {
			p[i] = unsafe.Pointer(&s[0])
		}
	}
	if err := overlaps(k, sig, v, ext); err != nil {
		return bad(err)
	}
	mode := C.int(C.EMU_SEQ)
	if k.sync || e.forcePar {
		mode = C.EMU_PAR
	}
	launchMu.Lock()
	rc := k.run(mode, C.int(grid), C.int(block), p, v)
	launchMu.Unlock()
	switch rc {
	case 0:
	case C.EMU_ERR_SYNC_IN_SEQ:
		return &cuda.Error{Op: op, Result: "EMULATOR_SYNC_IN_SEQ",
			Hint: "the kernel calls __syncthreads but launch.go runs it sequentially: mark it sync", Err: cuda.ErrLaunch}
	default:
		return &cuda.Error{Op: op, Result: "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
			Hint: fmt.Sprintf("could not start %d emulation threads", block), Err: cuda.ErrLaunch}
	}
	e.c.Launches[name]++
	return nil
}

// overlaps refuses a written range that overlaps another argument's range,
// except an identical range of an in-place (elementwise) kernel.
func overlaps(k spec, sig []kernels.Param, v []value, ext []int64) error {
	for i := range v {
		for j := i + 1; j < len(v); j++ {
			if k.access[i] == scalar || k.access[j] == scalar || (k.access[i] != wr && k.access[j] != wr) ||
				ext[i] == 0 || ext[j] == 0 {
				continue
			}
			ai, bi := v[i].ptr, v[i].ptr+cuda.Ptr(ext[i]*sizeofF32)
			aj, bj := v[j].ptr, v[j].ptr+cuda.Ptr(ext[j]*sizeofF32)
			if ai >= bj || aj >= bi {
				continue
			}
			if k.inPlace && ai == aj && bi == bj {
				continue
			}
			return fmt.Errorf("%s [%#x, %#x) and %s [%#x, %#x) overlap and one is written",
				sig[i].Name, uint64(ai), uint64(bi), sig[j].Name, uint64(aj), uint64(bj))
		}
	}
	return nil
}
