// Package model builds the forecaster as a Gorgonia ExprGraph (an MLP with
// mu, sigma and p_up heads over the ops of package ops), differentiates it
// with gorgonia.Grad and trains it with Adam, minibatches and early stopping.
// The training graph is lowered once into a Schedule of device-neutral steps
// (schedule.go: forward, the fused loss and its gradient, backward, Adam,
// the epoch's sums), which two interpreters run: the host program here
// (program.go: one call of an ops kernel per step, buffers allocated once,
// nothing allocated per step) and the device executor (package cuda). With
// Config.TapeMachine, or a graph the schedule cannot express, Gorgonia's
// TapeMachine runs it instead, bit for bit the same.
package model
