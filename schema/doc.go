// Package schema defines the Go types of every message Kairoscope sends or
// accepts on its two WebSocket dialects: the training hub (/ws, "type"
// messages) and the prediction pipeline (/ws/predict, "status" messages).
//
// The field names and meanings follow shared/seeds verbatim; messages may
// carry added fields, never fewer or renamed ones. This package is a leaf: it
// imports only the standard library.
package schema
