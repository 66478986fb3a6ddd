package emulator

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/kairoscope/kairoscope/cuda"
	"github.com/kairoscope/kairoscope/cuda/devicetest"
	"github.com/kairoscope/kairoscope/cuda/kernels"
)

func newDev(t *testing.T, opt Options) (*Emulator, devicetest.Dev) {
	e := New(opt)
	t.Cleanup(func() { e.Close() })
	return e, devicetest.Must(t, e)
}

// The launch table knows exactly the kernels of kernels.cu, with one access
// mode per parameter (a pointer's read or write, a scalar's none).
func TestTableMatchesKernels(t *testing.T) {
	names := slices.Sorted(maps.Keys(table))
	if want := slices.Sorted(slices.Values(kernels.Names)); !slices.Equal(names, want) {
		t.Fatalf("launch table %v, kernels.Names %v", names, want)
	}
	for name, k := range table {
		sig, _ := kernels.Signature(name)
		if len(k.access) != len(sig) {
			t.Errorf("%s: %d access modes for %d parameters", name, len(k.access), len(sig))
			continue
		}
		for i, p := range sig {
			if (p.Kind == kernels.Ptr) != (k.access[i] != scalar) {
				t.Errorf("%s: parameter %s (%v) has access %d", name, p.Name, p.Kind, k.access[i])
			}
		}
	}
}

func TestPtrsAreFakeAlignedAndApart(t *testing.T) {
	e, _ := newDev(t, Options{})
	var prevEnd cuda.Ptr
	for i, size := range []int64{1, 4, 1000, 256, 4096} {
		p, err := e.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		if p < firstPtr || p%256 != 0 {
			t.Errorf("alloc %d: %#x is not a 256-aligned address from %#x", i, uint64(p), uint64(firstPtr))
		}
		if p < prevEnd+guardGap {
			t.Errorf("alloc %d at %#x: no %d-byte gap after the previous one (end %#x)", i, uint64(p), guardGap, uint64(prevEnd))
		}
		prevEnd = p + cuda.Ptr(size)
	}
}

func TestNewMemoryIsNaN(t *testing.T) {
	_, d := newDev(t, Options{})
	for i, v := range d.Download(d.Alloc(10), 10) {
		if math.Float32bits(v) != nanBits {
			t.Fatalf("word %d of new memory is %#08x, want %#08x", i, math.Float32bits(v), nanBits)
		}
	}
}

func TestMemCapGivesMemError(t *testing.T) {
	e, _ := newDev(t, Options{MemCap: 1 << 20})
	p, err := e.Alloc(600 << 10)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Alloc(500 << 10)
	wantErr(t, err, cuda.ErrOutOfMemory, "CUDA out of memory", "500.0 KiB", "424.0 KiB free", "1.0 MiB")
	var me *cuda.MemError
	if !errors.As(err, &me) || me.Op != "alloc" || me.Requested != 500<<10 || me.Free != 424<<10 || me.Total != 1<<20 {
		t.Fatalf("%#v", me)
	}
	if free, total, err := e.MemInfo(); err != nil || free != 424<<10 || total != 1<<20 {
		t.Fatalf("MemInfo = %d, %d, %v", free, total, err)
	}
	if err := e.Free(p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Alloc(1 << 20); err != nil {
		t.Fatalf("the whole cap after Free: %v", err)
	}
	if e.Info().TotalMemory != 1<<20 {
		t.Error("Info().TotalMemory is not the cap")
	}
	if New(Options{}).Info().TotalMemory != DefaultMemCap {
		t.Error("default cap")
	}
}

func TestAllocRefusesNonPositiveSizes(t *testing.T) {
	e, _ := newDev(t, Options{})
	for _, n := range []int64{0, -4} {
		_, err := e.Alloc(n)
		wantErr(t, err, cuda.ErrBadArgument, "cuMemAlloc")
	}
}

func TestFreeRefusesWhatItDidNotAllocate(t *testing.T) {
	e, _ := newDev(t, Options{})
	p, _ := e.Alloc(64)
	if err := e.Free(0); err != nil {
		t.Errorf("Free(0) = %v", err)
	}
	wantErr(t, e.Free(0xdeadbeef00), cuda.ErrBadArgument, "never returned by Alloc")
	wantErr(t, e.Free(0x1000), cuda.ErrBadArgument, "never returned by Alloc")
	wantErr(t, e.Free(p+4), cuda.ErrBadArgument, "inside the allocation")
	if err := e.Free(p); err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.Free(p), cuda.ErrBadArgument, "already freed")
}

func TestCopiesAreBoundsChecked(t *testing.T) {
	e, d := newDev(t, Options{})
	p := d.Alloc(8)
	wantErr(t, e.CopyIn(p, make([]float32, 9)), cuda.ErrIllegalAddress, "dst", "needs 36 bytes", "has 32")
	wantErr(t, e.CopyIn(p+16, make([]float32, 5)), cuda.ErrIllegalAddress, "has 16")
	wantErr(t, e.CopyInInt32(p+2, []int32{1}), cuda.ErrIllegalAddress, "not 4-byte aligned")
	wantErr(t, e.CopyOut(make([]float32, 1), p+32), cuda.ErrIllegalAddress, "src", "0 bytes past the end")
	wantErr(t, e.CopyOut(make([]float32, 1), 0), cuda.ErrIllegalAddress, "null pointer")
	// Not sticky: cuMemcpy refuses before copying.
	if err := e.CopyIn(p, make([]float32, 8)); err != nil {
		t.Fatalf("a refused copy poisoned the device: %v", err)
	}
	q := d.Alloc(4)
	if err := e.Free(q); err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.CopyIn(q, []float32{1}), cuda.ErrIllegalAddress, "use after Free")
	// Empty copies touch nothing.
	if err := e.CopyIn(0, nil); err != nil {
		t.Error(err)
	}
}

func TestLaunchArguments(t *testing.T) {
	e, d := newDev(t, Options{})
	x := d.Alloc(16)
	zero := d.UploadInt32([]int32{0})
	cases := []struct {
		name     string
		grid     int
		block    int
		args     []cuda.Arg
		sentinel error
		says     []string
	}{
		{"no_such_kernel", 1, 32, nil, cuda.ErrNotImplemented, []string{"launch no_such_kernel", "CUDA_ERROR_NOT_FOUND"}},
		{"fill", 1, 32, []cuda.Arg{x, 1.5, 16}, cuda.ErrBadArgument, []string{"argument 1 (v) must be a float32, got float64"}},
		{"fill", 1, 32, []cuda.Arg{x, float32(1), int64(16)}, cuda.ErrBadArgument, []string{"(n) must be an int32 or int, got int64"}},
		{"fill", 1, 32, []cuda.Arg{uint64(x), float32(1), 16}, cuda.ErrBadArgument, []string{"(x) must be a cuda.Ptr"}},
		{"fill", 1, 32, []cuda.Arg{x, float32(1), x}, cuda.ErrBadArgument, []string{"(n) must be an int32"}},
		{"fill", 1, 32, []cuda.Arg{x, float32(1), 1 << 40}, cuda.ErrBadArgument, []string{"does not fit an int32"}},
		{"fill", 1, 32, []cuda.Arg{x, float32(1)}, cuda.ErrBadArgument, []string{"2 arguments for 3 parameters"}},
		{"fill", 1, 32, []cuda.Arg{x, float32(1), -1}, cuda.ErrBadArgument, []string{"n = -1 is negative"}},
		{"fill", 1, 0, []cuda.Arg{x, float32(1), 16}, cuda.ErrLaunch, []string{"block 0"}},
		{"fill", 1, 1025, []cuda.Arg{x, float32(1), 16}, cuda.ErrLaunch, []string{"block 1025"}},
		{"fill", 0, 32, []cuda.Arg{x, float32(1), 16}, cuda.ErrLaunch, []string{"grid 0"}},
		{"fill", 1 << 20, 1024, []cuda.Arg{x, float32(1), 16}, cuda.ErrLaunch, []string{"EMULATOR_LIMIT"}},
		{"bias_act", 1, 32, []cuda.Arg{x, x, 1 << 16, 1 << 16, 0}, cuda.ErrBadArgument, []string{"overflows the kernels' int indices"}},
		{"gather_rows", 1, 32, []cuda.Arg{x, x, x, 2, 2, 3}, cuda.ErrBadArgument, []string{"n_valid = 3 exceeds rows = 2"}},
		{"add_into", 1, 32, []cuda.Arg{x, x + 4, 8}, cuda.ErrBadArgument, []string{"dst", "src", "overlap"}},
		{"gather_rows", 1, 32, []cuda.Arg{x, x + 8, zero, 2, 2, 1}, cuda.ErrBadArgument, []string{"dst", "src", "overlap"}},
	}
	for _, c := range cases {
		err := e.Launch(c.name, c.grid, c.block, c.args...)
		wantErr(t, err, c.sentinel, c.says...)
	}
	// None of these is sticky, and none counts as a launch.
	d.Launch("fill", 1, 32, x, float32(1), 16)
	d.Launch("add_into", 1, 32, x, x, 16) // identical ranges: in place
	d.Launch("relu_grad", 1, 32, x, x, x, 16)
	if c := e.Counters().Launches; len(c) != 3 || c["fill"] != 1 {
		t.Errorf("launches %v", c)
	}
}

// An out-of-bounds argument is an illegal address that names the argument,
// and loses the device: later work fails, Free and Close still work.
func TestOutOfBoundsLaunchIsStickyIllegalAddress(t *testing.T) {
	e, d := newDev(t, Options{})
	y, b := d.Alloc(4*8), d.Alloc(7)
	err := e.Launch("bias_act", 1, 32, y, b, 4, 8, 1)
	wantErr(t, err, cuda.ErrIllegalAddress, "launch bias_act", "CUDA_ERROR_ILLEGAL_ADDRESS", "b = ", "needs 32 bytes", "has 28")
	wantErr(t, e.Launch("fill", 1, 32, y, float32(0), 32), cuda.ErrIllegalAddress, "lost by an earlier error", "b = ")
	wantErr(t, e.CopyOut(make([]float32, 1), y), cuda.ErrIllegalAddress, "cuMemcpyDtoH")
	_, err = e.Alloc(4)
	wantErr(t, err, cuda.ErrIllegalAddress, "cuMemAlloc")
	wantErr(t, e.Synchronize(), cuda.ErrIllegalAddress)
	if err := e.Free(y); err != nil {
		t.Errorf("Free on a lost device: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Error(err)
	}
}

// The gathers check the indices themselves against the gathered array.
func TestGatherIndicesAreChecked(t *testing.T) {
	for _, c := range []struct {
		name string
		idx  []int32
		says []string
	}{
		{"beyond", []int32{0, 5}, []string{"src = ", "needs 48 bytes", "has 40"}},
		{"negative", []int32{1, -1}, []string{"idx[1] = -1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, d := newDev(t, Options{})
			src, dst := d.Alloc(5*2), d.Alloc(4*2)
			err := e.Launch("gather_rows", 1, 32, dst, src, d.UploadInt32(c.idx), 4, 2, 2)
			wantErr(t, err, cuda.ErrIllegalAddress, c.says...)
		})
	}
	t.Run("targets", func(t *testing.T) {
		e, d := newDev(t, Options{})
		y, r, wt := d.Alloc(5), d.Alloc(4), d.Alloc(4)
		err := e.Launch("gather_targets", 1, 32, r, wt, y, d.UploadInt32([]int32{4, 5}), 4, 2)
		wantErr(t, err, cuda.ErrIllegalAddress, "y = ", "needs 24 bytes")
	})
	t.Run("idx itself", func(t *testing.T) {
		e, d := newDev(t, Options{})
		src, dst := d.Alloc(5*2), d.Alloc(4*2)
		err := e.Launch("gather_rows", 1, 32, dst, src, d.UploadInt32([]int32{1}), 4, 2, 3)
		wantErr(t, err, cuda.ErrIllegalAddress, "idx = ", "needs 12 bytes")
	})
}

func TestCountersCountEverything(t *testing.T) {
	e, d := newDev(t, Options{})
	x := d.Upload(make([]float32, 12))  // alloc 48 B, 48 B in
	idx := d.UploadInt32([]int32{1, 2}) // alloc 8 B, 8 B in
	d.Launch("fill", 1, 32, x, float32(2), 10)
	d.Launch("fill", 1, 32, x, float32(3), 10)
	d.Launch("add_into", 1, 32, x, x, 10)
	d.Sgemm(false, false, 2, 2, 2, 1, x, 2, x+16, 2, 0, x+32, 2)
	_ = d.Download(x, 10) // 40 B out, a sync
	if err := e.Synchronize(); err != nil {
		t.Fatal(err)
	}
	if err := e.Free(idx); err != nil {
		t.Fatal(err)
	}
	want := Counters{Launches: map[string]int{"fill": 2, "add_into": 1}, Gemms: 1, BytesHtoD: 56, BytesDtoH: 40,
		HostSyncs: 2, Allocs: 2, Frees: 1, LiveBytes: 48, PeakBytes: 56}
	got := e.Counters()
	if !countersEqual(got, want) {
		t.Fatalf("counters\n got %+v\nwant %+v", got, want)
	}
	got.Launches["fill"] = 99 // a copy
	if e.Counters().Launches["fill"] != 2 {
		t.Error("Counters shares its map")
	}
	e.ResetCounters()
	if got := e.Counters(); !countersEqual(got, Counters{Launches: map[string]int{}, LiveBytes: 48, PeakBytes: 48}) {
		t.Errorf("after ResetCounters %+v", got)
	}
}

func countersEqual(a, b Counters) bool {
	return maps.Equal(a.Launches, b.Launches) && a.Gemms == b.Gemms && a.BytesHtoD == b.BytesHtoD &&
		a.BytesDtoH == b.BytesDtoH && a.HostSyncs == b.HostSyncs && a.Allocs == b.Allocs && a.Frees == b.Frees &&
		a.LiveBytes == b.LiveBytes && a.PeakBytes == b.PeakBytes
}

func TestClosedDeviceRefusesWork(t *testing.T) {
	e := New(Options{Name: "test gpu"})
	p, _ := e.Alloc(16)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err := e.Alloc(16)
	wantErr(t, err, cuda.ErrNoDevice, "closed")
	wantErr(t, e.Launch("fill", 1, 32, p, float32(0), 4), cuda.ErrNoDevice)
	if _, _, err := e.MemInfo(); err == nil {
		t.Error("MemInfo on a closed device")
	}
	if e.Info().Name != "test gpu" {
		t.Error("Info().Name")
	}
}

// Emulators may be used from several goroutines at once (each launch takes
// the process-wide launch lock): run with -race.
func TestConcurrentEmulators(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			e := New(Options{})
			defer e.Close()
			n := 500 + g
			x, _ := e.Alloc(int64(4 * n))
			acc, _ := e.Alloc(20)
			wt, _ := e.Alloc(int64(4 * n))
			for range 10 {
				if err := errors.Join(
					e.Launch("fill", 2, 64, x, float32(g), n),
					e.Launch("fill", 2, 64, wt, float32(1), n),
					e.Launch("fill", 1, 32, acc, float32(0), 5),
					e.Launch("prob_loss", 1, 64, acc, x, x, wt, n/3, float32(0.5)),
				); err != nil {
					errs <- err
					return
				}
			}
			got := make([]float32, 5)
			if err := e.CopyOut(got, acc); err != nil {
				errs <- err
				return
			}
			if got[1] != float32(n/3) {
				errs <- fmt.Errorf("emulator %d: Σwt = %v, want %d", g, got[1], n/3)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
