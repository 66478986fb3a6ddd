package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/kairoscope/kairoscope/benchmarks"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// The binaries make gpu-check builds into DIR/bin, all for the GPU machine.
var binaries = []string{"kairoscope-cuda", "devicetest.test", "benchmarks-gpu.test", "gpucheck"}

// Files of the prepared folder.
const (
	binArchive   = "bin.tgz"
	countsFile   = "counts.json"
	manifestFile = "manifest.json"
	trainSpec    = "specs/train.json"
	oomSpec      = "specs/oom.json"
	// maxCarry is what the device tool carries beside the working tree
	// (64 MiB in all): the folder must stay well under it.
	maxCarry = 48 << 20
)

// The training run: two folds of five epochs of the default model on the
// embedded bike data.
var trainJob = worker.Spec{Run: &schema.RunRequest{Dataset: "bike", Folds: 2, Epochs: 5, Seed: 1}}

// The out-of-memory run: the largest net a client may ask for (8 hidden
// layers of 4096) has 117.6 million parameters, whose slab on the device
// (weights, gradients, Adam's two moments) is 1.88 GB, the executor's first
// allocation. The check leaves 1.5 GiB of the GPU free, room for the
// worker's context and cuBLAS handle but not for the slab besides, so that
// allocation fails in CUDA itself.
var oomJob = worker.Spec{Run: &schema.RunRequest{Dataset: "bike", Folds: 1, Epochs: 1, Seed: 1, OnOOM: schema.OnOOMFail,
	Hidden: []int{4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096}}}

// oomLeaveFree is what the hog leaves of the GPU's memory in the OOM run.
const oomLeaveFree = 3 << 29 // 1.5 GiB

// manifest says what was prepared, from which commit.
type manifest struct {
	Commit  string              `json:"commit"`
	Created time.Time           `json:"created"`
	Go      string              `json:"go"`
	Files   map[string]int64    `json:"files"`  // bytes
	Needed  map[string][]string `json:"needed"` // each binary's ELF NEEDED list
}

func runPrepare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("prepare", flag.ContinueOnError)
	dir := fs.String("dir", ".gpucheck", "the folder make gpu-check built the binaries into (DIR/bin)")
	commit := fs.String("commit", "", "the commit the binaries were built from")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m := manifest{Commit: *commit, Created: time.Now().UTC().Truncate(time.Second), Go: runtime.Version(),
		Files: map[string]int64{}, Needed: map[string][]string{}}
	for _, b := range binaries {
		needed, err := checkNeeded(filepath.Join(*dir, "bin", b))
		if err != nil {
			return err
		}
		m.Needed[b] = needed
	}
	for path, spec := range map[string]worker.Spec{trainSpec: trainJob, oomSpec: oomJob} {
		// What the worker will read: written by the code, checked by it.
		b, err := json.Marshal(spec)
		if err != nil {
			return err
		}
		if _, err := worker.ReadSpec(bytes.NewReader(b)); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := writeJSON(filepath.Join(*dir, path), spec); err != nil {
			return err
		}
	}
	fmt.Fprintln(os.Stderr, "counting the GPU engine's device work on the emulator")
	var counts []*benchmarks.EmulatorCounts
	for _, c := range benchmarks.Configs(false) {
		ec, err := benchmarks.CountEmulator(ctx, c)
		if err != nil {
			return err
		}
		ec.Config = c
		counts = append(counts, ec)
	}
	if err := writeJSON(filepath.Join(*dir, countsFile), counts); err != nil {
		return err
	}
	if err := packBinaries(*dir); err != nil {
		return err
	}
	var total int64
	err := filepath.Walk(*dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(*dir, p)
		m.Files[rel] = info.Size()
		total += info.Size()
		return nil
	})
	if err != nil {
		return err
	}
	if total > maxCarry {
		return fmt.Errorf("%s holds %d MiB: more than the %d MiB a device call may carry", *dir, total>>20, maxCarry>>20)
	}
	if err := writeJSON(filepath.Join(*dir, manifestFile), m); err != nil {
		return err
	}
	fmt.Printf("prepared %s (%.1f MiB) from commit %s. On the GPU machine, from the repository root:\n\n"+
		"    bash benchmarks/gpucheck/run.sh %s \"$OUT\"\n\n(carry %s; it writes report.md, results.json, devicetest.txt and logs.tgz under $OUT)\n",
		*dir, float64(total)/(1<<20), *commit, *dir, *dir)
	return nil
}

// allowedNeeded is what a binary for the GPU machine may need at load time:
// glibc and the driver's libcuda. Nothing of a CUDA toolkit (cuBLAS is
// loaded at run time) and no libstdc++ (linked statically).
var allowedNeeded = []string{"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1",
	"ld-linux-x86-64.so.2", "libcuda.so.1"}

// checkNeeded returns path's NEEDED list, or an error naming what is not
// allowed.
func checkNeeded(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (build it with make gpu-check)", path, err)
	}
	defer f.Close()
	needed, err := f.ImportedLibraries()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, n := range needed {
		if !slices.Contains(allowedNeeded, n) {
			return nil, fmt.Errorf("%s needs %s at load time (NEEDED %v); the GPU machine may lack it: only %s are allowed",
				path, n, needed, strings.Join(allowedNeeded, ", "))
		}
	}
	return needed, nil
}

// packBinaries moves DIR/bin into DIR/bin.tgz: Go binaries compress to a
// third, which keeps the carried folder small.
func packBinaries(dir string) (err error) {
	out, err := os.Create(filepath.Join(dir, binArchive))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, out.Close()) }()
	zw, _ := gzip.NewWriterLevel(out, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	for _, b := range binaries {
		path := filepath.Join(dir, "bin", b)
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: b, Mode: 0o755, Size: st.Size(), ModTime: st.ModTime()}); err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(dir, "bin"))
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
