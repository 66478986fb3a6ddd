// Command kairoscope is the server and CLI: serve, train, predict, worker.
// It is pure Go and never links gorgonia.org/cu (deps_test.go proves it).
package main
