// Package kairoscope holds repository-wide tests; the code lives in cmd,
// engine, cuda, ws and schema.
package kairoscope
