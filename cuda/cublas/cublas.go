package cublas

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>

// cuBLAS's C types, restated: no cuBLAS header is needed to build. Enums
// and cublasStatus_t are ints; handles and streams are pointers.
typedef int (*kc_create_fn)(void **handle);
typedef int (*kc_destroy_fn)(void *handle);
typedef int (*kc_set_stream_fn)(void *handle, void *stream);
typedef int (*kc_sgemm_fn)(void *handle, int transa, int transb, int m, int n, int k,
	const float *alpha, const float *a, int lda, const float *b, int ldb,
	const float *beta, float *c, int ldc);
typedef int (*kc_get_property_fn)(int type, int *value);
typedef size_t (*kc_cudart_version_fn)(void);

static void *kc_open(const char *name) { dlerror(); return dlopen(name, RTLD_NOW | RTLD_LOCAL); }
static void *kc_sym(void *lib, const char *name) { dlerror(); return dlsym(lib, name); }
static const char *kc_error(void) { return dlerror(); }

// kc_file names the file a symbol was loaded from ("" if unknown).
static const char *kc_file(void *sym) {
	Dl_info info;
	if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL) return "";
	return info.dli_fname;
}

static int kc_get_property(void *fn, int type, int *value) { return ((kc_get_property_fn)fn)(type, value); }
static size_t kc_cudart_version(void *fn) { return ((kc_cudart_version_fn)fn)(); }
static int kc_create(void *fn, uintptr_t *handle) {
	void *h = NULL;
	int st = ((kc_create_fn)fn)(&h);
	*handle = (uintptr_t)h;
	return st;
}
static int kc_destroy(void *fn, uintptr_t handle) { return ((kc_destroy_fn)fn)((void *)handle); }
static int kc_set_stream(void *fn, uintptr_t handle, uintptr_t stream) {
	return ((kc_set_stream_fn)fn)((void *)handle, (void *)stream);
}
static int kc_sgemm(void *fn, uintptr_t handle, int transa, int transb, int m, int n, int k,
	float alpha, uintptr_t a, int lda, uintptr_t b, int ldb, float beta, uintptr_t c, int ldc) {
	return ((kc_sgemm_fn)fn)((void *)handle, transa, transb, m, n, k, &alpha,
		(const float *)a, lda, (const float *)b, ldb, &beta, (float *)c, ldc);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// EnvPath is the environment variable that names the cuBLAS library to load
// (a file path or a soname) instead of searching Sonames.
const EnvPath = "KAIROSCOPE_CUBLAS"

// Sonames are the libraries Load tries, newest first: the dynamic loader's
// search (LD_LIBRARY_PATH, the ld.so cache) finds them.
var Sonames = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11"}

// Majors are the cuBLAS major versions this package has been written for:
// their v2 API has the same entry points and semantics for what is used.
var Majors = []int{11, 12, 13}

// ErrNoCUBLAS is matched (errors.Is) by Load's error when no candidate
// library was usable.
var ErrNoCUBLAS = errors.New("no usable cuBLAS")

// The entry points looked up. The required ones exist in cuBLAS 11, 12 and
// 13 under these names (the _v2 names are what cublas_v2.h's macros expand
// to); cublasGetCudartVersion only lets Load check the driver.
var (
	required = []string{"cublasCreate_v2", "cublasDestroy_v2", "cublasSetStream_v2", "cublasSgemm_v2", "cublasGetProperty"}
	optional = []string{"cublasGetCudartVersion"}
)

// Library is a loaded cuBLAS. Its methods are safe for concurrent use; the
// library stays loaded for the life of the process.
type Library struct {
	Name                string // what was opened: a soname or the path given
	File                string // the file the loader found, when it says
	Major, Minor, Patch int
	// CUDA is the CUDA runtime version the library was built for (e.g.
	// 12040 for 12.4), 0 when it does not say.
	CUDA int
	// Skipped are the candidates tried before this one and why each was
	// not used, for the logs.
	Skipped []Attempt

	lib unsafe.Pointer
	fn  map[string]unsafe.Pointer
}

// Attempt is one candidate Load tried and why it was not used.
type Attempt struct {
	Name string
	Err  error
}

// LoadError is Load's error when no candidate was usable: every candidate
// and why. It matches ErrNoCUBLAS.
type LoadError struct {
	Tried []Attempt
	Given bool // the candidate came from Options.Path
}

func (e *LoadError) Error() string {
	parts := make([]string, len(e.Tried))
	for i, a := range e.Tried {
		parts[i] = a.Err.Error()
	}
	hint := fmt.Sprintf("install cuBLAS %s, from a CUDA toolkit or the nvidia-cublas Python package, or set %s to its path",
		majorsText(), EnvPath)
	if e.Given {
		hint = fmt.Sprintf("%s names a library that cannot be used; point it at a libcublas.so of cuBLAS %s, or unset it to search %s",
			EnvPath, majorsText(), strings.Join(Sonames, ", "))
	}
	return fmt.Sprintf("%s: %s (%s)", ErrNoCUBLAS, strings.Join(parts, "; "), hint)
}

func (e *LoadError) Unwrap() error { return ErrNoCUBLAS }

func majorsText() string {
	s := make([]string, len(Majors))
	for i, m := range Majors {
		s[i] = fmt.Sprint(m)
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// Options says what Load looks for.
type Options struct {
	// Path, when not empty, is the only library tried: a file path or a
	// soname (the worker passes $KAIROSCOPE_CUBLAS).
	Path string
	// DriverVersion is cuDriverGetVersion's answer (e.g. 13000 for CUDA
	// 13.0): a library built for a newer CUDA major version is refused, as
	// it would fail at its first call. 0 skips the check.
	DriverVersion int
}

// Load opens the first usable cuBLAS: Options.Path alone when set, else
// Sonames in order. A candidate is usable when it opens, has every required
// entry point, is of a major version in Majors (matching its soname's) and,
// given a DriverVersion, was built for a CUDA major version the driver
// supports. Otherwise the error is a *LoadError listing each candidate.
func Load(opt Options) (*Library, error) {
	names, given := Sonames, opt.Path != ""
	if given {
		names = []string{opt.Path}
	}
	var tried []Attempt
	for _, name := range names {
		l, err := open(name, opt.DriverVersion)
		if err == nil {
			l.Skipped = tried
			return l, nil
		}
		tried = append(tried, Attempt{Name: name, Err: err})
	}
	return nil, &LoadError{Tried: tried, Given: given}
}

// open loads one candidate and checks it. A refused library is left open:
// dlclose of a library that started threads is not safe, and it is small
// next to a process's life.
func open(name string, driver int) (*Library, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	lib := C.kc_open(cname)
	if lib == nil {
		msg := dlError() // glibc's names the file: "libcublas.so.12: cannot open shared object file: ..."
		if !strings.Contains(msg, name) {
			msg = name + ": " + msg
		}
		return nil, errors.New(msg)
	}
	l := &Library{Name: name, lib: lib, fn: map[string]unsafe.Pointer{}}
	for _, s := range append(append([]string(nil), required...), optional...) {
		cs := C.CString(s)
		p := C.kc_sym(lib, cs)
		C.free(unsafe.Pointer(cs))
		if p == nil {
			if isRequired(s) {
				return nil, fmt.Errorf("%s has no %s (not cuBLAS, or too old)", name, s)
			}
			continue
		}
		l.fn[s] = p
	}
	l.File = C.GoString(C.kc_file(l.fn["cublasCreate_v2"]))
	for i, v := range []*int{&l.Major, &l.Minor, &l.Patch} {
		var c C.int
		if st := Status(C.kc_get_property(l.fn["cublasGetProperty"], C.int(i), &c)); st != StatusSuccess {
			return nil, fmt.Errorf("%s: cublasGetProperty: %w", name, st)
		}
		*v = int(c)
	}
	if p := l.fn["cublasGetCudartVersion"]; p != nil {
		l.CUDA = int(C.kc_cudart_version(p))
	}
	if !knownMajor(l.Major) {
		return nil, fmt.Errorf("%s is cuBLAS %d.%d.%d: this build knows cuBLAS %s", name, l.Major, l.Minor, l.Patch, majorsText())
	}
	if want, ok := sonameMajor(name); ok && want != l.Major {
		return nil, fmt.Errorf("%s reports version %d.%d.%d, not %d", name, l.Major, l.Minor, l.Patch, want)
	}
	if driver > 0 && l.CUDA > 0 && l.CUDA/1000 > driver/1000 {
		return nil, fmt.Errorf("%s (cuBLAS %d.%d.%d) needs a CUDA %d driver; this driver supports CUDA %s",
			name, l.Major, l.Minor, l.Patch, l.CUDA/1000, VersionText(driver))
	}
	return l, nil
}

func isRequired(s string) bool {
	for _, r := range required {
		if r == s {
			return true
		}
	}
	return false
}

func knownMajor(m int) bool {
	for _, k := range Majors {
		if k == m {
			return true
		}
	}
	return false
}

// sonameMajor reads N from a name ending in libcublas.so.N.
func sonameMajor(name string) (int, bool) {
	i := strings.LastIndex(name, "libcublas.so.")
	if i < 0 {
		return 0, false
	}
	var n int
	if _, err := fmt.Sscanf(name[i+len("libcublas.so."):], "%d", &n); err != nil {
		return 0, false
	}
	return n, true
}

func dlError() string {
	if e := C.kc_error(); e != nil {
		return C.GoString(e)
	}
	return "dlopen failed"
}

// VersionText writes a CUDA version number (12040) as "12.4".
func VersionText(v int) string { return fmt.Sprintf("%d.%d", v/1000, v%1000/10) }

// String is e.g. "cuBLAS 12.4.5 (libcublas.so.12, for CUDA 12.4)".
func (l *Library) String() string {
	s := fmt.Sprintf("cuBLAS %d.%d.%d (%s", l.Major, l.Minor, l.Patch, l.Name)
	if l.CUDA > 0 {
		s += ", for CUDA " + VersionText(l.CUDA)
	}
	return s + ")"
}

// Handle is a cuBLAS context (cublasHandle_t). Create it, and make every
// call on it, with the caller's CUDA context current on the calling thread:
// cuBLAS binds the handle to that context. A Handle is not safe for
// concurrent use.
type Handle struct {
	l *Library
	h C.uintptr_t
}

// Create is cublasCreate_v2.
func (l *Library) Create() (*Handle, error) {
	var h C.uintptr_t
	if st := Status(C.kc_create(l.fn["cublasCreate_v2"], &h)); st != StatusSuccess {
		return nil, &CallError{Op: "cublasCreate_v2", Status: st}
	}
	return &Handle{l: l, h: h}, nil
}

// SetStream is cublasSetStream_v2; 0 is the default stream.
func (h *Handle) SetStream(stream uintptr) error {
	return h.check("cublasSetStream_v2", C.kc_set_stream(h.l.fn["cublasSetStream_v2"], h.h, C.uintptr_t(stream)))
}

// Sgemm is cublasSgemm_v2, column-major C = alpha·op(A)·op(B) + beta·C, with
// device addresses a, b, c and alpha, beta on the host.
func (h *Handle) Sgemm(transA, transB bool, m, n, k int, alpha float32, a uintptr, lda int, b uintptr, ldb int, beta float32, c uintptr, ldc int) error {
	return h.check("cublasSgemm_v2", C.kc_sgemm(h.l.fn["cublasSgemm_v2"], h.h, op(transA), op(transB),
		C.int(m), C.int(n), C.int(k), C.float(alpha), C.uintptr_t(a), C.int(lda), C.uintptr_t(b), C.int(ldb),
		C.float(beta), C.uintptr_t(c), C.int(ldc)))
}

// Destroy is cublasDestroy_v2. Destroying twice is a no-op.
func (h *Handle) Destroy() error {
	if h.h == 0 {
		return nil
	}
	err := h.check("cublasDestroy_v2", C.kc_destroy(h.l.fn["cublasDestroy_v2"], h.h))
	h.h = 0
	return err
}

func (h *Handle) check(opName string, st C.int) error {
	if Status(st) == StatusSuccess {
		return nil
	}
	return &CallError{Op: opName, Status: Status(st)}
}

// cublasOperation_t: CUBLAS_OP_N = 0, CUBLAS_OP_T = 1.
func op(t bool) C.int {
	if t {
		return 1
	}
	return 0
}
