// Command loadgen runs package loadgen's load against a kairoscope server
// it starts on loopback, prints the result as JSON, and exits 1 when a
// check failed: make loadtest.
package main
