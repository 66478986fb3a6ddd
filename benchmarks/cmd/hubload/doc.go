// Command hubload is the hub benchmark's processes (package hubload):
// `hubload server` (the log or the in-memory path), `hubload clients` and
// `hubload feed` (the FastAPI peer's source of messages). `make bench`
// builds and starts it; it is not meant to be typed.
//
// Imports: package hubload only (and the standard library).
package main
