package benchmarks

import (
	"testing"

	"github.com/kairoscope/kairoscope/cuda"
	"github.com/kairoscope/kairoscope/cuda/emulator"
)

// benchEpochDevice is benchEpoch on the GPU engine of dev, reporting the
// device memory in use while it trains (device-B: the drop in free memory
// from before the trainer was built).
func benchEpochDevice(b *testing.B, c Config, dev cuda.Device) {
	free0, _, err := dev.MemInfo()
	if err != nil {
		b.Fatal(err)
	}
	benchEpoch(b, c, cuda.NewTrainer(dev), func(b *testing.B) {
		free1, _, err := dev.MemInfo()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(free0-free1), "device-B")
	})
}

// The GPU benchmark's code, run on the emulator: it trains, and reports
// the metrics Run reads, device memory included.
func TestDeviceBenchOnEmulator(t *testing.T) {
	dev := emulator.New(emulator.Options{})
	defer dev.Close()
	c := Config{Kind: KindDefault, Rows: 300, Hidden: 8, Batch: 64}
	res := testing.Benchmark(func(b *testing.B) { benchEpochDevice(b, c, dev) })
	if res.N == 0 {
		t.Fatal("the benchmark failed (see its log)")
	}
	// What the device holds while training: at least the parameters, their
	// Adam moments and gradients, and the fold's data.
	params := (Features*8 + 8) + (8*8 + 8) + (8*3 + 3)
	minBytes := float64(4 * (4*params + c.Rows*(Features+1)))
	t.Logf("device-B %v (at least %v), %v s/epoch", res.Extra["device-B"], minBytes, res.Extra["s/epoch"])
	if got := res.Extra["device-B"]; got < minBytes {
		t.Errorf("device-B = %v, want at least %v", got, minBytes)
	}
	for _, m := range []string{"s/epoch", "samples/s", "loss"} {
		if _, ok := res.Extra[m]; !ok {
			t.Errorf("metric %q not reported: %v", m, res.Extra)
		}
	}
	if got := res.Extra["steps/epoch"]; got != float64(c.Steps()) {
		t.Errorf("steps/epoch = %v, want %d", got, c.Steps())
	}
}
