// Package loadgen loads a real `kairoscope serve` on loopback and says what
// it delivered: N WebSocket clients on /ws, each parsing every frame,
// during a real training run (a worker process), some of them deliberately
// slow (they never read); then M clients of /ws/predict asking for a few
// forecasts at once. It starts the server itself, on 127.0.0.1 with a
// fresh data folder, so it never loads anything but this machine.
//
// Delivery latency is measured from the moment a message is appended to
// the run's log: the server's embedded NATS listens on loopback
// (--nats-listen) and the generator subscribes to the run's subject, so
// each message's reference time and every client's receive time come from
// one clock. Memory per connection is the server's resident memory
// (/proc/PID/status) with the clients connected, minus before, over N.
//
// It checks, and reports, that every healthy client received every seq of
// the run exactly once and in order, that every slow client was closed
// with 4008, that /ws/predict clients of the same forecast shared it, and
// that the server still answers and exits cleanly afterwards.
//
// Bounded: at most MaxClients connections, every wait under
// Config.Timeout. Imports no training code; cmd/loadgen is its command.
package loadgen
