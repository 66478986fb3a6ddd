package model

import "context"

// EpochTrace holds hooks that a Trainer's Epoch calls as it goes. Like
// net/http/httptrace's ClientTrace it travels in the context, so progress
// reporting needs no change to the Trainer interface and costs a nil check
// when nobody asks for it.
type EpochTrace struct {
	// StepDone is called after each training step with the steps done so
	// far in this epoch and the epoch's total. A device trainer calls it
	// when the step is queued, not when the device has finished it.
	StepDone func(done, total int)
}

type epochTraceKey struct{}

// WithEpochTrace returns ctx carrying t.
func WithEpochTrace(ctx context.Context, t *EpochTrace) context.Context {
	return context.WithValue(ctx, epochTraceKey{}, t)
}

// ContextEpochTrace returns the EpochTrace in ctx, or nil.
func ContextEpochTrace(ctx context.Context) *EpochTrace {
	t, _ := ctx.Value(epochTraceKey{}).(*EpochTrace)
	return t
}

// stepDone is what a Trainer's Epoch calls after each step: t's StepDone,
// if any.
func (t *EpochTrace) stepDone(done, total int) {
	if t != nil && t.StepDone != nil {
		t.StepDone(done, total)
	}
}

// StepDone calls the StepDone hook of the trace in ctx, if any: for
// Trainers outside this package.
func StepDone(ctx context.Context, done, total int) {
	ContextEpochTrace(ctx).stepDone(done, total)
}
