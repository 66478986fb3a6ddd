// Package benchmarks is `make bench`: it times the CPU engine (and the GPU
// engine where a GPU is present) on the default model and on scaling
// configurations, runs the same model in PyTorch (peers/torch_mlp.py)
// interleaved with it, and prints a table and writes a JSON file under
// results/.
//
// The measurements are `go test -bench` sub-benchmarks (bench_test.go: one
// per configuration, with ReportAllocs), so `go test -bench . ./benchmarks`
// runs them on their own. Run drives them: it builds the test binary once
// and runs each configuration in its own process, alternating with the
// PyTorch peer (Kairoscope, PyTorch, Kairoscope, ...), so that every run's
// peak RSS is its own and both sides see the same machine state. Without a
// GPU it reports why and counts, on the emulator, what a training step
// launches and copies. Last it measures the hub with 1,000 WebSocket clients
// during real training runs, against DESIGN.md's targets, through the log,
// through the in-memory hub and on the seed's FastAPI + uvicorn stack
// (peers/fastapi_hub.py), and the time from POST /api/runs to the first
// epoch_metrics (package hubload, which runs the servers and the clients
// as processes of their own).
//
// Imports: the engine's model, the cuda executor and its CPU emulator (cgo),
// and hubload.
// Only benchmarks and the bench command link this package; the engine must
// never import it.
package benchmarks
