package emulator

import (
	"fmt"
	"testing"

	"github.com/kairoscope/kairoscope/cuda"
	"github.com/kairoscope/kairoscope/cuda/devicetest"
)

// Emulator speed for one training step's shapes (batch 256, 40 inputs,
// hidden 64). These time the emulator, not a GPU: they tell how long tests
// and CPU benchmarks of the device path take.

func benchDev(b *testing.B) (*Emulator, devicetest.Dev) {
	e := New(Options{})
	b.Cleanup(func() { e.Close() })
	return e, devicetest.Must(b, e)
}

func BenchmarkBiasAct256x64(b *testing.B) {
	e, d := benchDev(b)
	const rows, cols = 256, 64
	y, bias := d.Upload(devicetest.Randn(devicetest.NewRand(b), rows*cols, 1)), d.Upload(devicetest.Randn(devicetest.NewRand(b), cols, 1))
	for _, block := range []int{128, 256} {
		grid := (rows*cols + block - 1) / block
		b.Run(fmt.Sprintf("grid=%d,block=%d", grid, block), func(b *testing.B) {
			b.SetBytes(rows * cols * 4 * 2)
			for b.Loop() {
				if err := e.Launch("bias_act", grid, block, y, bias, rows, cols, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSgemm256x40x64 is the first layer's forward GEMM, x [256,40] ·
// w [40,64], row-major through the operand swap.
func BenchmarkSgemm256x40x64(b *testing.B) {
	e, d := benchDev(b)
	const m, k, n = 256, 40, 64
	x, w, c := d.Upload(devicetest.Randn(devicetest.NewRand(b), m*k, 1)), d.Upload(devicetest.Randn(devicetest.NewRand(b), k*n, 1)), d.Alloc(m*n)
	for b.Loop() {
		if err := e.Sgemm(false, false, n, m, k, 1, w, n, x, k, 0, c, n); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(2*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkProbLoss256 runs the one kernel that needs pthreads
// (__syncthreads): its cost is thread creation, about linear in block.
func BenchmarkProbLoss256(b *testing.B) {
	e, d := benchDev(b)
	const n = 256
	out, r, wt := d.Upload(devicetest.Randn(devicetest.NewRand(b), 3*n, 1)), d.Upload(devicetest.Randn(devicetest.NewRand(b), n, 1)), d.Alloc(n)
	acc := d.Alloc(5)
	d.Launch("fill", 1, 256, wt, float32(1), n)
	for _, block := range []int{64, 128, 256} {
		b.Run(fmt.Sprintf("grid=1,block=%d", block), func(b *testing.B) {
			for b.Loop() {
				if err := e.Launch("prob_loss", 1, block, acc, out, r, wt, n, float32(0.5)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAdam(b *testing.B) {
	e, d := benchDev(b)
	const n = 40*64 + 64*64 + 64*3 // the default model's weights
	w, g, m, v := d.Upload(devicetest.Randn(devicetest.NewRand(b), n, 1)), d.Upload(devicetest.Randn(devicetest.NewRand(b), n, 1)), d.Alloc(n), d.Alloc(n)
	d.Launch("fill", 8, 256, m, float32(0), n)
	d.Launch("fill", 8, 256, v, float32(0), n)
	args := []cuda.Arg{w, g, m, v, float32(1e-3), float32(0.9), float32(0.999), float32(1e-8), float32(0.03), n}
	for b.Loop() {
		if err := e.Launch("adam_update", (n+255)/256, 256, args...); err != nil {
			b.Fatal(err)
		}
	}
}
