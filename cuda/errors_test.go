package cuda

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestMemErrorReadsLikeTheSchemaExample(t *testing.T) {
	err := fmt.Errorf("fold 0: %w", &MemError{Op: "alloc", Requested: 3 << 30, Free: 512 << 20, Total: 80 << 30})
	if !errors.Is(err, ErrOutOfMemory) {
		t.Error("not ErrOutOfMemory")
	}
	var me *MemError
	if !errors.As(err, &me) || !strings.HasPrefix(me.Error(), "CUDA out of memory") {
		t.Fatalf("%v", err)
	}
	for _, want := range []string{"3.00 GiB", "512.0 MiB free", "80.00 GiB"} {
		if !strings.Contains(me.Error(), want) {
			t.Errorf("%q lacks %q", me.Error(), want)
		}
	}
	e := &Error{Op: "launch bias_act", Result: "CUDA_ERROR_ILLEGAL_ADDRESS", Hint: "a kernel read out of bounds; the context is lost", Err: ErrIllegalAddress}
	if !errors.Is(e, ErrIllegalAddress) || !strings.Contains(e.Error(), "bias_act") {
		t.Errorf("%v", e)
	}
}
