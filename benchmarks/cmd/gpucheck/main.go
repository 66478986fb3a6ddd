package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gpucheck:", err)
		os.Exit(1)
	}
}

// Run dispatches to prepare or run.
func Run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "prepare" {
		return runPrepare(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "run" {
		return runCheck(ctx, args[1:])
	}
	return fmt.Errorf("usage: gpucheck prepare -dir DIR | gpucheck run -dir DIR -bin DIR -out DIR")
}
