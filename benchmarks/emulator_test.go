package benchmarks

import (
	"context"
	"testing"
)

// The split of the emulator's counts is exact: a training step does the
// same device work every time, an epoch copies its row order in and its
// sums out, a fold copies its data in once.
func TestCountEmulator(t *testing.T) {
	c := Config{Kind: KindDefault, Hidden: 8, Batch: 32}
	ec, err := CountEmulator(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("step: %v\nepoch: %v\nrow: %v\nfold: %v", ec.PerStep, ec.PerEpoch, ec.PerRow, ec.PerFold)
	if ec.PerStep.Gemms != 8 || ec.PerStep.HostSyncs != 0 || ec.PerStep.BytesHtoD != 0 || ec.PerStep.BytesDtoH != 0 {
		t.Errorf("per step: %v; want 8 GEMMs and no copies or syncs", ec.PerStep)
	}
	if ec.PerEpoch.HostSyncs != 1 || ec.PerEpoch.Gemms != 0 || ec.PerEpoch.BytesDtoH != 20 {
		t.Errorf("per epoch: %v; want one sync, the 5 sums out", ec.PerEpoch)
	}
	if ec.PerRow.BytesHtoD != 4 || ec.PerRow.LaunchesTotal != 0 {
		t.Errorf("per row: %v; want 4 bytes (the row order)", ec.PerRow)
	}
	if want := int64(ec.Rows * (Features + 1) * 4); ec.PerFold.BytesHtoD != want || ec.PerFold.LaunchesTotal != 0 {
		t.Errorf("per fold: %v; want the data, %d bytes, in", ec.PerFold, want)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		v    []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.v); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.v, got, c.want)
		}
	}
}

func TestParseBench(t *testing.T) {
	out := []byte("goos: linux\nBenchmarkEpoch/rows=1000,hidden=64,batch=256-2   \t      20\t  7265806 ns/op\t  0.007266 s/epoch\t 137631 samples/s\t 1.2 loss\t 17691 B/op\t   113 allocs/op\nPASS\n")
	m, err := parseBench(out, "BenchmarkEpoch/rows=1000,hidden=64,batch=256")
	if err != nil {
		t.Fatal(err)
	}
	if m["s/epoch"] != 0.007266 || m["allocs/op"] != 113 || m["B/op"] != 17691 {
		t.Errorf("parsed %v", m)
	}
	if _, err := parseBench(out, "BenchmarkEpoch/rows=10000,hidden=64,batch=256"); err == nil {
		t.Error("found a benchmark that did not run")
	}
}

func TestSyntheticData(t *testing.T) {
	x, r := Synthetic(2000, 1)
	zeros := 0
	for _, v := range r {
		if v == 0 {
			zeros++
		} else if v < 0 {
			t.Fatalf("negative target %v", v)
		}
	}
	if len(x) != 2000*Features || zeros < 900 || zeros > 1100 {
		t.Errorf("len(x) %d, %d of 2000 targets zero", len(x), zeros)
	}
	dir := t.TempDir()
	if err := WriteData(dir, 2000); err != nil {
		t.Fatal(err)
	}
	x2, r2, err := ReadData(dir, 2000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if x[i] != x2[i] {
			t.Fatalf("x[%d]: wrote %v, read %v", i, x[i], x2[i])
		}
	}
	for i := range r {
		if r[i] != r2[i] {
			t.Fatalf("r[%d]: wrote %v, read %v", i, r[i], r2[i])
		}
	}
}
