// Command loadgen loads a kairoscope server it starts on loopback: see
// package loadgen.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/kairoscope/kairoscope/ws/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := loadgen.Main(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
