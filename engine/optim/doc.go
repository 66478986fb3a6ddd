// Package optim updates parameters in place: Adam with PyTorch's bias
// correction, allocation-free, one fused loop per parameter.
package optim
