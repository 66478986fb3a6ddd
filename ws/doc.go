// Package ws serves Kairoscope over HTTP: the training hub (/ws), the
// prediction pipeline (/ws/predict), the REST API for runs, and their
// authentication and limits. It never trains: jobs run in worker processes
// and their messages are relayed here. It must not import gorgonia or CUDA
// code.
package ws
