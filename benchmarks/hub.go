package benchmarks

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/kairoscope/kairoscope/benchmarks/hubload"
)

// hub builds the hubload and kairoscope binaries (the latter with the CPU
// engine's tags, as make build links it) and measures the hub: runs of
// hubload.DefaultRequest without and with o.hubClients clients on every
// path of o.hubPaths, interleaved, then the start latency (package
// hubload).
func (b *bench) hub(ctx context.Context) (*hubload.Result, error) {
	bin, worker := filepath.Join(b.tmp, "hubload"), filepath.Join(b.tmp, "kairoscope")
	args := []string{"build"}
	if b.cpuTags != "" {
		args = append(args, "-tags", b.cpuTags)
	}
	for out, pkg := range map[string]string{bin: "github.com/kairoscope/kairoscope/benchmarks/cmd/hubload", worker: "github.com/kairoscope/kairoscope/cmd/kairoscope"} {
		if _, _, err := b.command(ctx, nil, b.dir, b.o.goCmd, append(args, "-o", out, pkg)...); err != nil {
			return nil, fmt.Errorf("benchmarks: building the hub benchmark: %w", err)
		}
	}
	fmt.Fprintf(b.stderr, "hub: %d clients, paths %s, %d runs a path without and with them\n", b.o.hubClients, strings.Join(b.o.hubPaths, ","), b.o.hubRuns)
	var pin *hubload.Pinning
	if !b.o.hubPin {
		pin = &hubload.Pinning{Note: "not pinned (-hub-pin=false): server and clients share every CPU"}
	}
	res, err := hubload.Measure(ctx, hubload.Options{Pinning: pin, Bin: bin, Worker: worker, Dir: filepath.Join(b.tmp, "hub"),
		Clients: b.o.hubClients, Runs: b.o.hubRuns, Paths: b.o.hubPaths, Python: b.o.python, Peer: filepath.Join(b.dir, "peers", "fastapi_hub.py"),
		Timeout: b.o.timeout, Progress: b.stderr, Profile: b.o.hubProfile})
	if err != nil {
		return nil, err
	}
	if b.o.hubStartRuns > 0 {
		if res.Start, err = hubload.StartLatency(ctx, hubload.StartOptions{Kairoscope: worker, Dir: filepath.Join(b.tmp, "hub-start"),
			Runs: b.o.hubStartRuns, Pinning: &res.Pinning, Progress: b.stderr}); err != nil {
			return nil, err
		}
	}
	return res, nil
}
