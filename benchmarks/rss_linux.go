package benchmarks

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// peakRSS is a finished process's peak resident set in bytes (getrusage's
// ru_maxrss, which Linux counts in KiB); 0 when unknown. Linux folds into
// it the parent's high-water mark at the moment of exec (the child shares
// the parent's memory until then), so it is only a fallback for a process
// that did not report its own VmHWM (selfPeakRSS).
func peakRSS(ps *os.ProcessState) int64 {
	if ps == nil {
		return 0
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024
	}
	return 0
}

// selfPeakRSS is this process's peak resident set in bytes since exec
// (VmHWM in /proc/self/status); 0 when unknown.
func selfPeakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 3 && string(f[0]) == "VmHWM:" && string(f[2]) == "kB" {
			kb, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
