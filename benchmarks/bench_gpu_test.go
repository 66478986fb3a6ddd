//go:build gpu

package benchmarks

import (
	"testing"

	"github.com/kairoscope/kairoscope/cuda"
)

// BenchmarkEpochGPU is BenchmarkEpoch on the GPU engine (cuda.NewTrainer on
// device 0), reporting the device memory in use while it trains (device-B:
// the drop in free memory from before the trainer was built). Built only
// with the gpu tag: the binary then needs a GPU (gorgonia.org/cu exits in
// its init without one).
func BenchmarkEpochGPU(b *testing.B) {
	dev, err := cuda.OpenGPU(0)
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	for _, c := range Configs(false) {
		b.Run(c.Name(), func(b *testing.B) {
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
		})
	}
}
