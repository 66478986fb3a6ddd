package cublas_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/kairoscope/kairoscope/cuda/cublas"
)

// These tests load the real cuBLAS of Debian's CUDA 11.8 (make deps-gpu
// installs it): loading, symbol lookup and the version queries need no GPU.

func load(t *testing.T, opt cublas.Options) *cublas.Library {
	t.Helper()
	l, err := cublas.Load(opt)
	if err != nil {
		t.Fatalf("%v (make deps-gpu installs Debian's cuBLAS 11)", err)
	}
	return l
}

// With no path, Load tries the sonames newest first and takes the first
// usable one; each one skipped says why, and the version matches the soname.
func TestLoadFindsCuBLASBySoname(t *testing.T) {
	l := load(t, cublas.Options{})
	t.Logf("loaded %v from %s; skipped %v", l, l.File, l.Skipped)
	i := -1
	for k, s := range cublas.Sonames {
		if s == l.Name {
			i = k
		}
	}
	if i < 0 {
		t.Fatalf("loaded %q, not one of %v", l.Name, cublas.Sonames)
	}
	if len(l.Skipped) != i {
		t.Fatalf("skipped %v before %s, want the %d sonames before it", l.Skipped, l.Name, i)
	}
	for k, a := range l.Skipped {
		if a.Name != cublas.Sonames[k] || a.Err == nil || !strings.Contains(a.Err.Error(), a.Name) {
			t.Errorf("skipped[%d] = %v, want %s with a reason naming it", k, a, cublas.Sonames[k])
		}
	}
	if !strings.Contains(l.File, l.Name) {
		t.Errorf("File %q is not a %s", l.File, l.Name)
	}
	if l.Major < 11 || l.Minor < 0 || l.Patch < 0 {
		t.Errorf("version %d.%d.%d", l.Major, l.Minor, l.Patch)
	}
}

// Debian's CUDA 11.8 cuBLAS by soname: cuBLAS 11.11.3, built for CUDA 11.8.
func TestLoadDebiansCuBLAS11(t *testing.T) {
	l := load(t, cublas.Options{Path: "libcublas.so.11", DriverVersion: 11080})
	if l.Major != 11 || l.Minor != 11 || l.CUDA != 11080 {
		t.Errorf("%v: want cuBLAS 11.11.x built for CUDA 11.8 (11080), got CUDA %d", l, l.CUDA)
	}
	if got := l.String(); !strings.HasPrefix(got, "cuBLAS 11.11.") || !strings.HasSuffix(got, "(libcublas.so.11, for CUDA 11.8)") {
		t.Errorf("String() = %q", got)
	}
	if len(l.Skipped) != 0 {
		t.Errorf("a given path skipped %v", l.Skipped)
	}
}

// A driver older than the CUDA the library was built for refuses it, and
// says what each needs.
func TestLoadRefusesALibraryTooNewForTheDriver(t *testing.T) {
	_, err := cublas.Load(cublas.Options{Path: "libcublas.so.11", DriverVersion: 10020})
	wantLoadError(t, err, "libcublas.so.11 (cuBLAS 11.11.", "needs a CUDA 11 driver", "supports CUDA 10.2", cublas.EnvPath)
}

// A library that is not cuBLAS names the missing entry point; a missing
// file names the path and the loader's reason.
func TestLoadRefusesWhatIsNotCuBLAS(t *testing.T) {
	_, err := cublas.Load(cublas.Options{Path: "libm.so.6"})
	wantLoadError(t, err, "libm.so.6 has no cublasCreate_v2")
	_, err = cublas.Load(cublas.Options{Path: "/nonexistent/libcublas.so.13"})
	wantLoadError(t, err, "/nonexistent/libcublas.so.13: cannot open shared object file", "unset it to search libcublas.so.13")
}

func wantLoadError(t *testing.T, err error, parts ...string) {
	t.Helper()
	var le *cublas.LoadError
	if !errors.Is(err, cublas.ErrNoCUBLAS) || !errors.As(err, &le) || len(le.Tried) == 0 {
		t.Fatalf("err = %v, want a *LoadError matching ErrNoCUBLAS", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
}

// Without a GPU, cublasCreate fails and says so as a typed status instead
// of crashing: this machine's driver library finds no device.
func TestCreateWithoutAGPUIsAStatus(t *testing.T) {
	l := load(t, cublas.Options{Path: "libcublas.so.11"})
	h, err := l.Create()
	if err == nil {
		h.Destroy()
		t.Fatal("cublasCreate_v2 succeeded on a machine without a GPU")
	}
	var ce *cublas.CallError
	if !errors.As(err, &ce) || ce.Op != "cublasCreate_v2" || !errors.Is(err, cublas.StatusNotInitialized) {
		t.Fatalf("err = %v (%T), want cublasCreate_v2: CUBLAS_STATUS_NOT_INITIALIZED", err, err)
	}
}

func TestStatusText(t *testing.T) {
	for st, want := range map[cublas.Status]string{cublas.StatusAllocFailed: "CUBLAS_STATUS_ALLOC_FAILED",
		cublas.StatusExecutionFailed: "CUBLAS_STATUS_EXECUTION_FAILED", 42: "cublasStatus_t 42"} {
		if st.Error() != want {
			t.Errorf("%d: %q, want %q", int(st), st.Error(), want)
		}
	}
}
