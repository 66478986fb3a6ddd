package devicetest

import (
	"errors"
	"math"
	"testing"

	"github.com/kairoscope/kairoscope/cuda"
)

// Copies in and out return what went in, bit for bit (NaN payloads, −0,
// infinities, subnormals; int32 indices as their bits), also into the middle
// of an allocation.
func testCopies(t *testing.T, d Dev) {
	r := NewRand(t)
	x := Randn(r, 1000, 1)
	special := []float32{float32(math.NaN()), math.Float32frombits(0x7fc0dead), float32(math.Copysign(0, -1)),
		float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(1), math.SmallestNonzeroFloat32, math.MaxFloat32}
	copy(x[10:], special)
	p := d.Upload(x)
	SameBits(t, "round trip", d.Download(p, len(x)), x)

	// Into the middle: words 100..199 only.
	y := Randn(r, 100, 3)
	if err := d.d.CopyIn(p+100*4, y); err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]float32(nil), x[:100]...), y...), x[200:]...)
	SameBits(t, "after a copy into the middle", d.Download(p, len(x)), want)
	got := make([]float32, 50)
	if err := d.d.CopyOut(got, p+150*4); err != nil {
		t.Fatal(err)
	}
	SameBits(t, "a copy out of the middle", got, y[50:])

	idx := []int32{0, 1, -1, math.MaxInt32, math.MinInt32, 123456}
	q := d.UploadInt32(idx)
	raw := d.Download(q, len(idx))
	for i, v := range idx {
		if int32(math.Float32bits(raw[i])) != v {
			t.Fatalf("int32 %d came back as %#08x", v, math.Float32bits(raw[i]))
		}
	}
	if err := d.d.CopyIn(p, nil); err != nil {
		t.Errorf("an empty copy: %v", err)
	}
	if err := d.d.Synchronize(); err != nil {
		t.Errorf("Synchronize: %v", err)
	}
}

// MemInfo is consistent with Info; an allocation beyond the whole memory is
// a *cuda.MemError matching ErrOutOfMemory that says "CUDA out of memory",
// and leaves the device usable; Free releases what Alloc took.
func testMemory(t *testing.T, d Dev) {
	info := d.d.Info()
	free0, total, err := d.d.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (%s): %d of %d bytes free", info.Name, info.ComputeCapability, free0, total)
	if total <= 0 || free0 <= 0 || free0 > total || info.TotalMemory != total {
		t.Fatalf("MemInfo %d free of %d, Info().TotalMemory %d", free0, total, info.TotalMemory)
	}
	_, err = d.d.Alloc(total + 1<<30)
	wantErr(t, err, cuda.ErrOutOfMemory, "CUDA out of memory")
	var me *cuda.MemError
	if !errors.As(err, &me) || me.Total != total {
		t.Errorf("%v: %+v, want a *cuda.MemError with the total %d", err, me, total)
	}
	// Still usable: allocate 64 MiB, fill its last MiB, free it.
	const words, tail = 16 << 20, 1 << 18
	p := d.Alloc(words)
	d.Launch("fill", 64, 128, p+(words-tail)*4, float32(1.5), tail)
	if v := d.Download(p+(words-1)*4, 1); v[0] != 1.5 {
		t.Fatalf("after an out-of-memory error, fill wrote %v", v[0])
	}
	free1, _, err := d.d.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.d.Free(p); err != nil {
		t.Fatal(err)
	}
	if err := d.d.Free(0); err != nil {
		t.Errorf("Free(0): %v", err)
	}
	free2, _, err := d.d.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	// Other processes may use the GPU meanwhile: allow 32 MiB of drift.
	if free1 > free0-words*4+32<<20 || free2 < free1+words*4-32<<20 {
		t.Errorf("free memory %d, %d after allocating 64 MiB, %d after freeing it", free0, free1, free2)
	}
}

// A kernel the device does not have is ErrNotImplemented, never a silent
// fallback, and does not poison the device.
func testUnknownKernel(t *testing.T, d Dev) {
	p := d.Alloc(4)
	wantErr(t, d.d.Launch("no_such_kernel", 1, 32, p), cuda.ErrNotImplemented, "no_such_kernel")
	d.Launch("fill", 1, 32, p, float32(2), 4)
	SameBits(t, "fill after the refused launch", d.Download(p, 4), []float32{2, 2, 2, 2})
}
