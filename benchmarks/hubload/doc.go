// Package hubload measures the training hub (/ws) under load as DESIGN.md's
// target states it: 1,000 WebSocket clients on loopback during a real
// training run. Three processes take part, so that neither side's work
// hides in the other's:
//
//   - the server (Serve, `hubload server`): ws.NewServer with the real
//     worker runner, as `kairoscope serve` builds it, training in a
//     `kairoscope worker` process; Config.OnPublish records when each
//     message was published;
//   - the clients (Clients, `hubload clients`): n raw WebSocket connections
//     on /ws, each reading every frame and noting when it arrived;
//   - the driver (Measure, run by `make bench`): it starts both, runs the
//     same training request with no client and with n clients, interleaved,
//     and turns their reports into a Result.
//
// Delivery latency is a client's receive time minus the server's publish
// time; both are wall-clock UnixNano on the same machine.
//
// Imports: ws, worker, schema and datasets; never the engine's model
// or CUDA code (the training runs in the worker binary it is given).
package hubload
