// Package datasets is the series the server trains and forecasts on: the
// embedded defaults (bike, sp500), read-only, so that a fresh build serves
// without any file, and a Store over a folder of CSV files that clients
// upload, replace, delete and append rows to. Clients name a dataset; they
// never pass a server path. Credits for the embedded files are in
// SOURCES.md.
//
// Every file is validated by the loader `kairoscope train --data` uses
// (engine/dataset) and identified by the SHA-256 of its bytes. Writes are
// atomic and durable: a new file is written under a hidden temporary name,
// synced, renamed over the old one and the folder synced, so a crash leaves
// either the old file or the new one, never part of one. A job pins the
// version it was started on (Store.Pin): the exact bytes stay readable, in
// a content-addressed copy, until it ends, whatever is appended later.
//
// It imports only the standard library, engine/dataset and schema; it must
// not import the engine's training code or the server.
package datasets
