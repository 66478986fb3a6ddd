package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kairoscope/kairoscope/benchmarks/hubload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	run := map[string]func(context.Context, []string, io.Reader, io.Writer, io.Writer) error{
		"server": hubload.Serve, "clients": hubload.Clients, "feed": hubload.Feed,
	}
	if len(os.Args) < 2 || run[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: hubload server|clients|feed [flags]")
		os.Exit(2)
	}
	if err := run[os.Args[1]](ctx, os.Args[2:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hubload:", err)
		os.Exit(1)
	}
}
