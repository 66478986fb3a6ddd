// Package model builds the forecaster as a Gorgonia ExprGraph (an MLP with
// mu, sigma and p_up heads over the ops of package ops), differentiates it
// with gorgonia.Grad and trains it with Adam, minibatches and early stopping.
package model
