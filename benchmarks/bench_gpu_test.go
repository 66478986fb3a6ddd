//go:build gpu

package benchmarks

import (
	"os"
	"testing"

	"github.com/kairoscope/kairoscope/cuda"
	"github.com/kairoscope/kairoscope/cuda/cublas"
)

// BenchmarkEpochGPU is BenchmarkEpoch on the GPU engine (cuda.NewTrainer on
// device 0), reporting the device memory it uses (benchEpochDevice). Built
// only with the gpu tag: the binary then needs a GPU (gorgonia.org/cu exits
// in its init without one). TestDeviceBenchOnEmulator runs the same code
// on the emulator.
func BenchmarkEpochGPU(b *testing.B) {
	dev, err := cuda.OpenGPU(0, cuda.GPUOptions{CUBLAS: os.Getenv(cublas.EnvPath)})
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	for _, c := range Configs(false) {
		b.Run(c.Name(), func(b *testing.B) { benchEpochDevice(b, c, dev) })
	}
}
