package benchmarks

import (
	"os"
	"syscall"
)

// peakRSS is a finished process's peak resident set in bytes (getrusage's
// ru_maxrss, which Linux counts in KiB); 0 when unknown.
func peakRSS(ps *os.ProcessState) int64 {
	if ps == nil {
		return 0
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024
	}
	return 0
}
