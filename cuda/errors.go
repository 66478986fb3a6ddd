package cuda

import (
	"errors"
	"fmt"

	"github.com/kairoscope/kairoscope/engine/model"
)

// Sentinels, matched with errors.Is through *MemError and *Error.
var (
	ErrOutOfMemory    = model.ErrOutOfMemory // so the engine sees it without importing cuda
	ErrNoDevice       = errors.New("no CUDA device")
	ErrNotImplemented = errors.New("not implemented on this device")
	ErrBadArgument    = errors.New("bad kernel argument")
	ErrLaunch         = errors.New("kernel launch failed")
	ErrIllegalAddress = errors.New("illegal memory access")
	ErrBLAS           = errors.New("cuBLAS call failed")
)

// MemError is an allocation that did not fit. Its text starts with "CUDA
// out of memory", as clients of the training schema expect, and says what
// was asked and what was there.
type MemError struct {
	Op          string // "alloc", "cublas"
	Requested   int64  // bytes asked for
	Free, Total int64  // device memory when it failed
}

func (e *MemError) Error() string {
	return fmt.Sprintf("CUDA out of memory: %s of %s failed (%s free of %s); lower --batch-size or --hidden",
		e.Op, bytesText(e.Requested), bytesText(e.Free), bytesText(e.Total))
}

func (e *MemError) Unwrap() error { return ErrOutOfMemory }

// Error is any other failed CUDA or cuBLAS call: the call, the driver's
// name for the result, and what a person can do about it.
type Error struct {
	Op     string // e.g. "launch bias_act", "cublasSgemm", "cuMemcpyDtoH"
	Result string // the driver's result name, e.g. "CUDA_ERROR_ILLEGAL_ADDRESS"
	Hint   string
	Err    error // a sentinel above
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("CUDA error in %s: %s", e.Op, e.Result)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

func bytesText(b int64) string {
	const (
		kib = 1 << 10
		mib = 1 << 20
		gib = 1 << 30
	)
	switch {
	case b >= gib:
		return fmt.Sprintf("%.2f GiB", float64(b)/gib)
	case b >= mib:
		return fmt.Sprintf("%.1f MiB", float64(b)/mib)
	case b >= kib:
		return fmt.Sprintf("%.1f KiB", float64(b)/kib)
	}
	return fmt.Sprintf("%d B", b)
}
