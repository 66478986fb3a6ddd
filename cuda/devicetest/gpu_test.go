//go:build gpu

package devicetest_test

import (
	"os"
	"testing"

	"github.com/kairoscope/kairoscope/cuda"
	"github.com/kairoscope/kairoscope/cuda/cublas"
	"github.com/kairoscope/kairoscope/cuda/devicetest"
)

// On a GPU machine: go test -c -tags gpu ./cuda/devicetest builds this on
// a CPU machine; the binary runs the suite on device 0 (it needs a GPU:
// gorgonia.org/cu exits in its init without one). $KAIROSCOPE_CUBLAS picks
// the cuBLAS library, as for the worker.

func openGPU(t *testing.T) cuda.Device {
	t.Helper()
	g, err := cuda.OpenGPU(0, cuda.GPUOptions{CUBLAS: os.Getenv(cublas.EnvPath)})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestGPUInfo says what the suite runs on.
func TestGPUInfo(t *testing.T) {
	g := openGPU(t)
	defer g.Close()
	info := g.Info()
	t.Logf("device: %s, compute capability %s, %.1f GiB, driver %s, %s", info.Name, info.ComputeCapability,
		float64(info.TotalMemory)/(1<<30), info.Driver, info.BLAS)
	if info.Name == "" || info.TotalMemory <= 0 || info.BLAS == "" || info.Driver == "" {
		t.Errorf("Info %+v", info)
	}
}

func TestGPU(t *testing.T) { devicetest.Run(t, openGPU) }
