// Command genseries writes the generated daily count series the forecast
// benchmark and the backtests use where no public series of the kind could
// be committed: `go run ./benchmarks/cmd/genseries` rewrites
// benchmarks/data/*.csv and datasets/transit.csv, byte for byte the same on
// every machine (seeded PCG, fixed formulas).
//
// Imports: engine/features (the US holiday calendar) only.
package main
