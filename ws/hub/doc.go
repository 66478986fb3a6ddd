// Package hub fans a set of append-only message streams out to WebSocket
// clients: the training hub's runs on /ws and the forecasts of /ws/predict.
//
// A stream is a run's log: messages numbered by seq (1, 2, 3, …), the last
// one terminal. The hub is a cache in front of the durable log (package
// runlog): its feed appends what the log delivers, in any order and with
// duplicates, and the hub keeps each stream's contiguous run of messages,
// deciding how long history stays in memory (Config). What it has dropped,
// the log can load back (Hub.Load).
//
// A client names what it follows (Subscription): every stream in progress,
// or one stream; where it resumes (since); which optional messages it wants.
// It first catches up from the history, in batches that are never counted
// against its live queue, then receives live messages through a bounded
// queue, and is closed with CloseSlowClient only when that queue overflows.
//
// It imports no training code and nothing of NATS: it knows messages, not
// where they come from.
package hub
