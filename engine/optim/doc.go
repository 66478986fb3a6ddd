// Package optim updates parameters in place: Adam with PyTorch's bias
// correction, allocation-free, one fused loop per parameter.
//
// It works on plain []float32 slices (the backing arrays of the model's
// parameter tensors) and knows nothing of graphs: it must not import
// Gorgonia, gorgonia.org/cu, the cuda/ tree or any other engine package.
package optim
