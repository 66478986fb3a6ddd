// Command hubload is the hub benchmark's server and clients processes
// (package hubload): `hubload server` and `hubload clients`. `make bench`
// builds and starts it; it is not meant to be typed.
//
// Imports: package hubload only (and the standard library).
package main
