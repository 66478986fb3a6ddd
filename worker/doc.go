// Package worker is the contract between the server and the worker
// processes that train: a Spec goes in as one JSON object on the worker's
// stdin, beats come on descriptor 3 when the spec asks for them (empty
// lines that tell the worker its server still listens), schema messages
// come out as JSON lines on its stdout, zerolog JSON logs on its stderr. Runner starts workers (the GPU worker when there is
// one, falling back to the CPU worker) and relays their messages.
//
// It imports no training code: the server links it without Gorgonia's
// graph code paths ever running, and a worker crash never takes the server
// down.
package worker
