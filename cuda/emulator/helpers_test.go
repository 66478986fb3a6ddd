package emulator

import (
	"errors"
	"strings"
	"testing"

	"github.com/kairoscope/kairoscope/cuda"
)

// wantErr fails unless err is a *cuda.Error (or *cuda.MemError for
// ErrOutOfMemory) matching sentinel whose text contains every part.
func wantErr(t testing.TB, err, sentinel error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %q is not %v", err, sentinel)
	}
	var ce *cuda.Error
	var me *cuda.MemError
	if !errors.As(err, &ce) && !errors.As(err, &me) {
		t.Fatalf("error %q (%T) is neither *cuda.Error nor *cuda.MemError", err, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
}
