// Package hubload measures the training hub (/ws) under load as DESIGN.md's
// target states it: 1,000 WebSocket clients on loopback during a real
// training run, on several hub paths side by side with the same load
// generator. Each side runs in processes of its own, so that neither
// side's work hides in the other's:
//
//   - a server per path (Serve, `hubload server -path`): log is
//     ws.NewServer on an embedded JetStream run log with a local agent, as
//     `kairoscope serve` builds it; memory is the hub of ws/hub fed with
//     the worker's messages as `hubload feed` (Feed) relays them, with no
//     log in between; fastapi is the seed's stack, FastAPI + uvicorn
//     (peers/fastapi_hub.py, which speaks the same protocol to the driver),
//     broadcasting the same feed. Training runs in a `kairoscope worker`
//     process on every path;
//   - the clients (Clients, `hubload clients`): n raw WebSocket connections
//     on plain /ws, as the seed's clients connect, each parsing every
//     message whole as a JSON object and noting when it arrived;
//   - the driver (Measure, run by `make bench`): it pins the server and the
//     clients to separate CPUs (Pinning), runs the same training request
//     with no client and with n clients on every path, interleaved, and
//     turns the reports into a Result.
//
// Delivery latency is a client's receive time minus the time the message
// was handed to the path's serving stack; both are wall-clock UnixNano on
// the same machine.
//
// Imports: ws, ws/hub, agent, runlog, worker, schema and datasets; never the
// engine's model or CUDA code (the training runs in the worker binary it is
// given).
package hubload
