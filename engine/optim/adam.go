package optim

import (
	"fmt"
	"math"
)

// Adam is torch.optim.Adam (amsgrad=False, weight_decay=0, maximize=False)
// over float32 parameters. Step t (1-based) does, for every element,
//
//	m = β1·m + (1−β1)·g
//	v = β2·v + (1−β2)·g²
//	p -= lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps)
//
// in the same order of operations as PyTorch's single-tensor path. The
// moments are stored in float32 like the parameters; the two bias
// corrections are computed in float64 once per step.
//
// The exported hyper-parameters may be changed between steps (a learning-rate
// schedule); they are read at every Step. An Adam is not safe for concurrent
// use. The zero value is not usable: build one with NewAdam.
type Adam struct {
	LR, Beta1, Beta2, Eps float64

	m, v [][]float32
	t    int
}

// NewAdam returns an Adam for parameters of the given lengths, with
// PyTorch's defaults β1 = 0.9, β2 = 0.999, eps = 1e-8 and zero moments.
func NewAdam(lr float64, sizes []int) *Adam {
	a := &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
		m: make([][]float32, len(sizes)), v: make([][]float32, len(sizes))}
	for i, n := range sizes {
		a.m[i] = make([]float32, n)
		a.v[i] = make([]float32, n)
	}
	return a
}

// Steps returns the number of steps taken since NewAdam or Reset.
func (a *Adam) Steps() int { return a.t }

// Reset zeroes the moments and the step count (a new fold), keeping the
// hyper-parameters and the buffers.
func (a *Adam) Reset() {
	for i := range a.m {
		clear(a.m[i])
		clear(a.v[i])
	}
	a.t = 0
}

// StepScalars returns, for step t ≥ 1 under the current hyper-parameters,
// the two scalars of the update p -= stepSize · m / (sqrt(v)/bc2Sqrt + eps):
// stepSize = lr/(1−β1^t) and bc2Sqrt = sqrt(1−β2^t). A device implementation
// of the update takes them from here so that both paths agree.
func (a *Adam) StepScalars(t int) (stepSize, bc2Sqrt float64) {
	bc1 := 1 - math.Pow(a.Beta1, float64(t))
	bc2 := 1 - math.Pow(a.Beta2, float64(t))
	return a.LR / bc1, math.Sqrt(bc2)
}

// Step applies one update to every parameter in place: params[i] and
// grads[i] must have the length sizes[i] given to NewAdam. It allocates
// nothing. It panics when the shapes do not match, before changing anything.
func (a *Adam) Step(params, grads [][]float32) {
	if len(params) != len(a.m) || len(grads) != len(a.m) {
		panic(fmt.Sprintf("optim: Adam.Step: %d params and %d grads for %d parameters", len(params), len(grads), len(a.m)))
	}
	for i := range params {
		if len(params[i]) != len(a.m[i]) || len(grads[i]) != len(a.m[i]) {
			panic(fmt.Sprintf("optim: Adam.Step: parameter %d: len(param)=%d, len(grad)=%d, want %d",
				i, len(params[i]), len(grads[i]), len(a.m[i])))
		}
	}
	a.t++
	stepSize, bc2Sqrt := a.StepScalars(a.t)
	b1, b2 := float32(a.Beta1), float32(a.Beta2)
	c1, c2 := float32(1-a.Beta1), float32(1-a.Beta2)
	step, bc, eps := float32(stepSize), float32(bc2Sqrt), float32(a.Eps)
	for i, p := range params {
		adamUpdate(p, grads[i], a.m[i], a.v[i], b1, b2, c1, c2, step, bc, eps)
	}
}

// adamUpdate is the fused per-element update of one parameter.
func adamUpdate(p, g, m, v []float32, b1, b2, c1, c2, step, bc, eps float32) {
	g = g[:len(p)]
	m = m[:len(p)]
	v = v[:len(p)]
	for j := range p {
		gj := g[j]
		mj := b1*m[j] + c1*gj
		vj := b2*v[j] + c2*gj*gj
		m[j], v[j] = mj, vj
		denom := float32(math.Sqrt(float64(vj)))/bc + eps
		p[j] -= step * (mj / denom)
	}
}
