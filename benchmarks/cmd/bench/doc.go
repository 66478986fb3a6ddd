// Command bench is `make bench` and `make bench-quick`: it runs
// benchmarks.Run (see package benchmarks) and exits non-zero on error.
//
// Imports: package benchmarks only (and the standard library).
package main
