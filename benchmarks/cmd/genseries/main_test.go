package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The committed files are what the generator writes, byte for byte.
func TestCommittedSeriesAreGenerated(t *testing.T) {
	dir := t.TempDir()
	for _, s := range series {
		path := filepath.Join(dir, filepath.Base(s.path))
		if err := write(path, s); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("..", "..", "..", s.path))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what genseries writes: run go run ./benchmarks/cmd/genseries", s.path)
		}
	}
}
