// Package model builds the forecaster as a Gorgonia ExprGraph (an MLP with
// mu, sigma and p_up heads over the ops of package ops), differentiates it
// with gorgonia.Grad and trains it with Adam, minibatches and early stopping.
// A training step runs the graph as a host program compiled from it
// (program.go: one call of an ops kernel per node, buffers allocated once,
// nothing allocated per step), or on Gorgonia's TapeMachine with
// Config.TapeMachine, bit for bit the same.
package model
