package model

import (
	"context"
	"errors"
	"math/rand/v2"
)

// ErrOutOfMemory is what a Trainer's errors match (errors.Is) when its
// device ran out of memory: the engine can then retry with a smaller batch.
// Package cuda's errors match it.
var ErrOutOfMemory = errors.New("CUDA out of memory")

// Trainer is a model being trained, wherever it runs: *Net on the CPU, or a
// device executor running the same graph (package cuda). The engine sees
// only this. The CPU never fails where a device may (out of memory, a
// failed launch), so every method that touches the model returns an error.
type Trainer interface {
	// Epoch runs one shuffled pass over x [rows, in] and y [rows].
	Epoch(ctx context.Context, x, y []float32, rng *rand.Rand) (EpochStats, error)
	// Forward writes the [rows, 3] outputs for x into dst.
	Forward(dst, x []float32, rows int) error
	// Snapshot copies the parameters (w1, b1, ...) to the host; Restore
	// writes such a copy back.
	Snapshot() ([][]float32, error)
	Restore(params [][]float32) error
	Close() error
}

// NewTrainer makes a Trainer for in features; New is the CPU one.
type NewTrainer func(in int, cfg Config, seed uint64) (Trainer, error)

// NewCPU is New as a NewTrainer.
func NewCPU(in int, cfg Config, seed uint64) (Trainer, error) { return New(in, cfg, seed) }

var _ Trainer = (*Net)(nil)
