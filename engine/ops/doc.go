// Package ops holds the model's custom Gorgonia ops: the fused
// dense+bias+activation layer and the fused Gaussian-NLL + BCE loss, each
// with its gradient ops beside it. Every op maps to one GEMM or one kernel, so
// a device implementation can sit next to its CPU Do.
package ops
