package emulator

import (
	"fmt"
	"maps"
	"math"
	"sort"
	"sync"
	"unsafe"

	"github.com/kairoscope/kairoscope/cuda"
)

// DefaultMemCap is the total memory an Emulator pretends to have when
// Options.MemCap is 0.
const DefaultMemCap int64 = 16 << 30

const (
	firstPtr  cuda.Ptr = 0x10000000 // the first allocation's address
	ptrAlign           = 256        // cuMemAlloc's alignment
	guardGap           = 256        // unmapped bytes after every allocation
	nanBits            = 0x7fc0dead // what new memory holds: a quiet NaN
	maxInt32           = math.MaxInt32
	sizeofF32          = 4
)

// Options configures an Emulator.
type Options struct {
	// MemCap is the device's total memory in bytes: Alloc fails with
	// *cuda.MemError when the live bytes would exceed it. 0 means
	// DefaultMemCap (16 GiB). The emulator really allocates what it hands
	// out, so the cap does not protect the host from a large Alloc.
	MemCap int64
	// Name is Info().Name; "" means "emulator".
	Name string
}

// Counters is what an Emulator has done since New or ResetCounters.
type Counters struct {
	Launches             map[string]int // successful launches per kernel name
	Gemms                int            // successful Sgemm calls
	BytesHtoD, BytesDtoH int64          // bytes copied by CopyIn/CopyInInt32 and CopyOut
	HostSyncs            int            // CopyOut and Synchronize calls
	Allocs, Frees        int            // successful Alloc and Free calls
	LiveBytes, PeakBytes int64          // bytes allocated now, and the most at once since New or ResetCounters
}

// Emulator is a cuda.Device on the CPU (see the package comment). Its
// methods may be called from several goroutines: each holds the emulator's
// lock, and launches are serialised across all emulators of the process.
// The zero value is not usable: build one with New.
type Emulator struct {
	mu     sync.Mutex
	name   string
	cap    int64
	next   cuda.Ptr
	allocs []*alloc // by base address, freed ones included (addresses are never reused)
	live   int64
	c      Counters
	sticky *cuda.Error // the illegal address that lost the context, if any
	closed bool
	// forcePar runs every kernel in EMU_PAR mode (tests: a kernel must
	// give the same result whatever the mode).
	forcePar bool
}

var _ cuda.Device = (*Emulator)(nil)

type alloc struct {
	base  cuda.Ptr
	size  int64     // bytes asked for
	data  []float32 // ceil(size/4) words; nil once freed
	freed bool
}

func (a *alloc) end() cuda.Ptr { return a.base + cuda.Ptr(a.size) }

// New returns an emulated device with no memory allocated.
func New(opt Options) *Emulator {
	e := &Emulator{name: opt.Name, cap: opt.MemCap, next: firstPtr}
	if e.name == "" {
		e.name = "emulator"
	}
	if e.cap <= 0 {
		e.cap = DefaultMemCap
	}
	e.c.Launches = map[string]int{}
	return e
}

// Info names the emulator; ComputeCapability is "emulated".
func (e *Emulator) Info() cuda.Info {
	return cuda.Info{Name: e.name, ComputeCapability: "emulated", TotalMemory: e.cap}
}

// Counters returns a copy of the counters.
func (e *Emulator) Counters() Counters {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.c
	c.Launches = maps.Clone(e.c.Launches)
	return c
}

// ResetCounters zeroes the counters, except LiveBytes (what is allocated
// now) and PeakBytes, which restarts from LiveBytes.
func (e *Emulator) ResetCounters() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.c = Counters{Launches: map[string]int{}, LiveBytes: e.live, PeakBytes: e.live}
}

// usable returns the error every call but Free, MemInfo, Info, Close and
// the counters gets on a closed or poisoned device.
func (e *Emulator) usable(op string) error {
	if e.closed {
		return &cuda.Error{Op: op, Result: "CUDA_ERROR_CONTEXT_IS_DESTROYED",
			Hint: "the emulator was closed", Err: cuda.ErrNoDevice}
	}
	if e.sticky != nil {
		return &cuda.Error{Op: op, Result: e.sticky.Result,
			Hint: "the context was lost by an earlier error (" + e.sticky.Error() + "); start a new device",
			Err:  e.sticky.Err}
	}
	return nil
}

// Alloc returns bytes of memory filled with NaN. bytes must be > 0
// (cuMemAlloc refuses 0).
func (e *Emulator) Alloc(bytes int64) (cuda.Ptr, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.usable("cuMemAlloc"); err != nil {
		return 0, err
	}
	if bytes <= 0 {
		return 0, &cuda.Error{Op: "cuMemAlloc", Result: "CUDA_ERROR_INVALID_VALUE",
			Hint: fmt.Sprintf("cannot allocate %d bytes", bytes), Err: cuda.ErrBadArgument}
	}
	if bytes > e.cap-e.live {
		return 0, &cuda.MemError{Op: "alloc", Requested: bytes, Free: e.cap - e.live, Total: e.cap}
	}
	a := &alloc{base: e.next, size: bytes, data: make([]float32, (bytes+sizeofF32-1)/sizeofF32)}
	nan := math.Float32frombits(nanBits)
	for i := range a.data {
		a.data[i] = nan
	}
	e.allocs = append(e.allocs, a)
	e.next = alignUp(a.end()+guardGap, ptrAlign)
	e.live += bytes
	e.c.Allocs++
	e.c.LiveBytes = e.live
	e.c.PeakBytes = max(e.c.PeakBytes, e.live)
	return a.base, nil
}

func alignUp(p cuda.Ptr, a cuda.Ptr) cuda.Ptr { return (p + a - 1) / a * a }

// Free releases an allocation. Free(0) is a no-op; freeing anything but the
// base of a live allocation is an error (cuda.ErrBadArgument), as is
// freeing twice. It works on a poisoned device.
func (e *Emulator) Free(p cuda.Ptr) error {
	if p == 0 {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	bad := func(why string) error {
		return &cuda.Error{Op: "cuMemFree", Result: "CUDA_ERROR_INVALID_VALUE",
			Hint: fmt.Sprintf("%#x %s", uint64(p), why), Err: cuda.ErrBadArgument}
	}
	if e.closed {
		return bad(": the emulator was closed")
	}
	a := e.find(p)
	switch {
	case a == nil || p >= a.end():
		return bad("was never returned by Alloc")
	case a.freed:
		return bad("was already freed")
	case p != a.base:
		return bad(fmt.Sprintf("is inside the allocation at %#x, not its start", uint64(a.base)))
	}
	a.freed, a.data = true, nil
	e.live -= a.size
	e.c.Frees++
	e.c.LiveBytes = e.live
	return nil
}

// find returns the allocation with the highest base ≤ p, or nil.
func (e *Emulator) find(p cuda.Ptr) *alloc {
	i := sort.Search(len(e.allocs), func(i int) bool { return e.allocs[i].base > p })
	if i == 0 {
		return nil
	}
	return e.allocs[i-1]
}

// span resolves the range [p, p+4·words) to the words of its allocation.
// An empty range resolves to nil without looking at p (nothing is touched).
// what names the operand in errors.
func (e *Emulator) span(p cuda.Ptr, words int64, what string) ([]float32, error) {
	if words == 0 {
		return nil, nil
	}
	bytes := words * sizeofF32
	a := e.find(p)
	switch {
	case p == 0:
		return nil, fmt.Errorf("%s is the null pointer (%d bytes needed)", what, bytes)
	case a == nil:
		return nil, fmt.Errorf("%s = %#x is not device memory from Alloc (%d bytes needed)", what, uint64(p), bytes)
	case p >= a.end():
		state := ""
		if a.freed {
			state = "freed "
		}
		return nil, fmt.Errorf("%s = %#x is %d bytes past the end of the %s%d-byte allocation at %#x",
			what, uint64(p), uint64(p-a.end()), state, a.size, uint64(a.base))
	case a.freed:
		return nil, fmt.Errorf("%s = %#x points into the freed allocation at %#x (use after Free)", what, uint64(p), uint64(a.base))
	}
	off := int64(p - a.base)
	if off%sizeofF32 != 0 {
		return nil, fmt.Errorf("%s = %#x is not 4-byte aligned (offset %d in the allocation at %#x)", what, uint64(p), off, uint64(a.base))
	}
	if bytes > a.size-off {
		return nil, fmt.Errorf("%s = %#x needs %d bytes but its allocation (%d bytes at %#x) has %d from there",
			what, uint64(p), bytes, a.size, uint64(a.base), a.size-off)
	}
	return a.data[off/sizeofF32 : off/sizeofF32+words : off/sizeofF32+words], nil
}

func copyError(op string, err error) error {
	return &cuda.Error{Op: op, Result: "CUDA_ERROR_INVALID_VALUE", Hint: err.Error(), Err: cuda.ErrIllegalAddress}
}

// CopyIn copies src to dst. An out-of-range dst is an error
// (cuda.ErrIllegalAddress, not sticky: cuMemcpy checks before copying).
func (e *Emulator) CopyIn(dst cuda.Ptr, src []float32) error {
	return e.copyIn(dst, len(src), func(d []float32) { copy(d, src) })
}

// CopyInInt32 copies the indices src to dst, as CopyIn.
func (e *Emulator) CopyInInt32(dst cuda.Ptr, src []int32) error {
	return e.copyIn(dst, len(src), func(d []float32) { copy(asInt32s(d), src) })
}

// copyIn checks and counts a host-to-device copy of n words; fill writes
// them into the device span.
func (e *Emulator) copyIn(dst cuda.Ptr, n int, fill func(d []float32)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	const op = "cuMemcpyHtoD"
	if err := e.usable(op); err != nil {
		return err
	}
	d, err := e.span(dst, int64(n), "dst")
	if err != nil {
		return copyError(op, err)
	}
	fill(d)
	e.c.BytesHtoD += int64(n) * sizeofF32
	return nil
}

// asInt32s views device words as int32s (device memory is untyped).
func asInt32s(w []float32) []int32 {
	if len(w) == 0 {
		return nil
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&w[0])), len(w))
}

// CopyOut copies len(dst) values from src: one host sync.
func (e *Emulator) CopyOut(dst []float32, src cuda.Ptr) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	const op = "cuMemcpyDtoH"
	if err := e.usable(op); err != nil {
		return err
	}
	s, err := e.span(src, int64(len(dst)), "src")
	if err != nil {
		return copyError(op, err)
	}
	copy(dst, s)
	e.c.BytesDtoH += int64(len(dst)) * sizeofF32
	e.c.HostSyncs++
	return nil
}

// Synchronize is a host sync; all work is already done when a call returns.
func (e *Emulator) Synchronize() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.usable("cuCtxSynchronize"); err != nil {
		return err
	}
	e.c.HostSyncs++
	return nil
}

// MemInfo reports the cap minus the live bytes, and the cap.
func (e *Emulator) MemInfo() (free, total int64, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 0, 0, e.usable("cuMemGetInfo")
	}
	return e.cap - e.live, e.cap, nil
}

// Close releases all memory. Later calls fail, except Close (a no-op),
// Info and the counters.
func (e *Emulator) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	e.allocs = nil
	e.live = 0
	e.c.LiveBytes = 0
	return nil
}

// poison records err, an illegal address in a launch or an Sgemm, as the
// error that lost the context, and returns it.
func (e *Emulator) poison(err *cuda.Error) error {
	if e.sticky == nil {
		e.sticky = err
	}
	return err
}
