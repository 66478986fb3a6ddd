//go:build !linux

package benchmarks

import "os"

// peakRSS is unknown (0) outside Linux: ru_maxrss's unit differs by system.
func peakRSS(*os.ProcessState) int64 { return 0 }

// selfPeakRSS is unknown (0) outside Linux.
func selfPeakRSS() int64 { return 0 }
