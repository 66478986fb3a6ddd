package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kairoscope/kairoscope/benchmarks"
)

// results is OUT/results.json.
type results struct {
	Started  time.Time                    `json:"started"`
	Seconds  float64                      `json:"seconds"`
	GPU      string                       `json:"gpu"`
	CUBLAS   []string                     `json:"cublas_env,omitempty"`
	Manifest manifest                     `json:"manifest"`
	Sections []*section                   `json:"sections"`
	Bench    []benchmarks.GPUCheckRow     `json:"bench"`
	Counts   []*benchmarks.EmulatorCounts `json:"emulator_counts"`
}

// write (re)writes OUT/report.md, OUT/results.json and OUT/logs.tgz.
func (c *checker) write() error {
	var b strings.Builder
	gpu := c.gpuName
	if gpu == "" {
		gpu = "no GPU found"
	}
	fmt.Fprintf(&b, "# Kairoscope GPU check: %s\n\n", gpu)
	fmt.Fprintf(&b, "%s, %.0f s so far; binaries from commit %s, prepared %s with %s.\n\n",
		c.start.UTC().Format("2006-01-02 15:04 UTC"), time.Since(c.start).Seconds(), c.manifest.Commit,
		c.manifest.Created.Format("2006-01-02 15:04 UTC"), c.manifest.Go)
	fmt.Fprintf(&b, "| part | result | seconds | summary |\n|---|---|---:|---|\n")
	for _, s := range c.sections {
		fmt.Fprintf(&b, "| %s | %s | %.0f | %s |\n", s.Title, s.Status, s.Seconds, strings.ReplaceAll(s.Summary, "|", "/"))
	}
	b.WriteString("\n")
	for _, s := range c.sections {
		fmt.Fprintf(&b, "## %s: %s\n\n%s\n\n%s", s.Title, s.Status, s.Summary, s.body.String())
	}
	err := os.WriteFile(filepath.Join(c.out, "report.md"), []byte(b.String()), 0o644)
	res := results{Started: c.start.UTC(), Seconds: time.Since(c.start).Seconds(), GPU: c.gpuName, CUBLAS: c.env,
		Manifest: c.manifest, Sections: c.sections, Bench: c.bench, Counts: c.counts}
	if j, jerr := json.MarshalIndent(res, "", "  "); jerr == nil {
		err = errors.Join(err, os.WriteFile(filepath.Join(c.out, "results.json"), append(j, '\n'), 0o644))
	}
	return errors.Join(err, packLogs(c.logs, filepath.Join(c.out, "logs.tgz")))
}

// packLogs writes every file of dir into a .tgz at path.
func packLogs(dir, path string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: "logs/" + e.Name(), Mode: 0o644, Size: info.Size(), ModTime: info.ModTime()}); err != nil {
			return err
		}
		src, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		_, err = io.CopyN(tw, src, info.Size()) // a log still being written may have grown
		src.Close()
		if err != nil {
			return err
		}
	}
	return errors.Join(tw.Close(), zw.Close())
}
