// Package schema defines the Go types of every message Kairoscope sends or
// accepts on its two WebSocket dialects: the training hub (/ws, "type"
// messages) and the prediction pipeline (/ws/predict, "status" messages),
// and of the training job a client asks for (RunRequest, the body of
// POST /api/runs).
//
// The field names and meanings follow shared/seeds verbatim; messages may
// carry added fields, never fewer or renamed ones. Beyond the seeds, /ws
// carries pong, notification and batch_progress (the seed's announced
// extensions), and the server adds run_id and seq (FieldRunID, FieldSeq) to
// every /ws message it relays, after the fields of the Go types.
//
// The Go types are the source. Beside them, jsonschema/ holds one JSON
// Schema (draft 2020-12) file per message and one for RunRequest, embedded
// in the package (SchemaFS); Validate checks a message on the wire against
// its file, and the tests keep the files and the types in step: every
// required field is a field the Go type always sends, and every field is
// typed. Every message schema allows added fields, which clients must
// tolerate.
//
// DecodeRunRequest is the one decoder of client input here: strict (unknown
// fields, trailing data, oversized bodies, wrong types and out-of-range
// values are *RequestError values matching ErrInvalidRunRequest) and fuzzed.
//
// This package is a leaf: it imports only the standard library and
// github.com/santhosh-tekuri/jsonschema/v6; never another Kairoscope
// package.
package schema
