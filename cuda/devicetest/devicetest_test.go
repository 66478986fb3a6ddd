//go:build !gpu

package devicetest_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kairoscope/kairoscope/cuda"
	"github.com/kairoscope/kairoscope/cuda/devicetest"
	"github.com/kairoscope/kairoscope/cuda/emulator"
)

// breakEnv names the kernel (or "sgemm") that brokenDevice corrupts; set
// only in the child processes of TestSuiteCatchesABrokenDevice.
const breakEnv = "KAIROSCOPE_DEVICETEST_BREAK"

// brokenDevice is the emulator with one operation made slightly wrong:
// after each successful launch of kernel (or Sgemm), the first element of
// its output (the first argument, or C) is changed by about 1e-3.
type brokenDevice struct {
	*emulator.Emulator
	kernel string
}

func (b brokenDevice) Launch(name string, grid, block cuda.Dim, args ...cuda.Arg) error {
	if err := b.Emulator.Launch(name, grid, block, args...); err != nil || name != b.kernel {
		return err
	}
	return b.corrupt(args[0].(cuda.Ptr))
}

func (b brokenDevice) Sgemm(transA, transB bool, m, n, k int, alpha float32, a cuda.Ptr, lda int, x cuda.Ptr, ldb int, beta float32, c cuda.Ptr, ldc int) error {
	if err := b.Emulator.Sgemm(transA, transB, m, n, k, alpha, a, lda, x, ldb, beta, c, ldc); err != nil || b.kernel != "sgemm" || m*n == 0 {
		return err
	}
	return b.corrupt(c)
}

func (b brokenDevice) corrupt(p cuda.Ptr) error {
	v := make([]float32, 1)
	if err := b.Emulator.CopyOut(v, p); err != nil {
		return err
	}
	v[0] = v[0]*(1+1e-3) + 1e-3
	return b.Emulator.CopyIn(p, v)
}

// TestBrokenDevice runs the suite on a brokenDevice; it is a child of
// TestSuiteCatchesABrokenDevice, which expects it to fail, and does nothing
// on its own.
func TestBrokenDevice(t *testing.T) {
	kernel := os.Getenv(breakEnv)
	if kernel == "" {
		return
	}
	devicetest.Run(t, func(*testing.T) cuda.Device { return brokenDevice{emulator.New(emulator.Options{}), kernel} })
}

// The suite is not blind: with any one kernel (or Sgemm) slightly wrong,
// the tests of that kernel fail. Each case runs the suite in a child
// process (this test binary again) and reads which subtests failed.
func TestSuiteCatchesABrokenDevice(t *testing.T) {
	cases := map[string][]string{
		"bias_act":       {"bias_act", "dense_forward", "training"},
		"relu_grad":      {"relu_grad"},
		"col_sum":        {"col_sum"},
		"prob_loss":      {"prob_loss"},
		"prob_loss_grad": {"prob_loss"},
		"adam_update":    {"adam_update", "training"},
		"gather_rows":    {"gather_rows"},
		"gather_targets": {"gather_targets"},
		"fill":           {"fill_add_into"},
		"add_into":       {"fill_add_into"},
		"sgemm":          {"sgemm/formula", "sgemm/row_major", "training"}, // dense_forward's ReLU may hide C[0]
	}
	for kernel, mustFail := range cases {
		t.Run(kernel, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenDevice$", "-test.v")
			cmd.Env = append(os.Environ(), breakEnv+"="+kernel)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed with %s broken:\n%s", kernel, out)
			}
			for _, name := range mustFail {
				if !strings.Contains(string(out), fmt.Sprintf("--- FAIL: TestBrokenDevice/%s ", name)) {
					t.Errorf("with %s broken, %s did not fail:\n%s", kernel, name, out)
				}
			}
			for _, name := range []string{"copies", "memory", "unknown_kernel"} {
				if strings.Contains(string(out), "--- FAIL: TestBrokenDevice/"+name+" ") && kernel != "fill" {
					t.Errorf("with %s broken, %s failed too (it does not use it)", kernel, name)
				}
			}
		})
	}
}
