package emulator

import (
	"testing"

	"github.com/kairoscope/kairoscope/cuda"
	"github.com/kairoscope/kairoscope/cuda/devicetest"
)

// TestConformance runs the device suite (package cuda/devicetest, which the
// GPU runs too) as the emulator runs kernels (sequentially, pthreads for
// the kernels that synchronise) and with every kernel on pthreads, one per
// CUDA thread: a kernel must not depend on the schedule.
func TestConformance(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		devicetest.Run(t, func(*testing.T) cuda.Device { return New(Options{}) })
	})
	t.Run("all_par", func(t *testing.T) {
		devicetest.Run(t, func(*testing.T) cuda.Device { e := New(Options{}); e.forcePar = true; return e })
	})
}
