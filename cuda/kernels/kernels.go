package kernels

import (
	_ "embed" // PTX and Source
	"slices"
)

// PTX is kernels.ptx: every kernel of kernels.cu compiled by nvcc for the
// virtual architecture compute_70 (see the package comment). A device loads
// it with cuModuleLoadData and finds each kernel by its name in Names.
//
//go:embed kernels.ptx
var PTX string

// Source is kernels.cu, the text both nvcc and the emulator compile. It is
// embedded for the tests and so that a change to it changes this package:
// the go command does not track a C file that cuda/emulator includes from
// here, but it does rebuild cuda/emulator when a package it imports changes.
//
//go:embed kernels.cu
var Source string

// Names lists every kernel (every extern "C" __global__ function of
// kernels.cu, every .entry of PTX), in source order.
var Names = []string{
	"bias_act",
	"relu_grad",
	"col_sum",
	"prob_loss",
	"prob_loss_grad",
	"adam_update",
	"gather_rows",
	"gather_targets",
	"fill",
	"add_into",
}

// Kind is how a kernel parameter is passed.
type Kind int

// The parameter kinds: the PTX declares a pointer .u64, an int .u32 and a
// float .f32. A device passes each through an 8-byte holder (cu reads 8
// bytes per parameter).
const (
	Ptr     Kind = iota + 1 // a device address (float* or int*): a cuda.Ptr
	Int32                   // int: an int32
	Float32                 // float: a float32
)

func (k Kind) String() string {
	switch k {
	case Ptr:
		return "ptr"
	case Int32:
		return "int32"
	case Float32:
		return "float32"
	}
	return "Kind(?)"
}

// Param is one kernel parameter: its name in kernels.cu and its kind.
type Param struct {
	Name string
	Kind Kind
}

// Signature returns the parameters of kernel name in order, as kernels.cu
// declares them, and false for a name that is not a kernel. The slice is
// the caller's.
func Signature(name string) ([]Param, bool) {
	p, ok := signatures[name]
	return slices.Clone(p), ok
}

func ptr(n string) Param { return Param{n, Ptr} }
func i32(n string) Param { return Param{n, Int32} }
func f32(n string) Param { return Param{n, Float32} }

// signatures is read-only; Signature hands out copies.
var signatures = map[string][]Param{
	"bias_act":       {ptr("y"), ptr("b"), i32("rows"), i32("cols"), i32("relu")},
	"relu_grad":      {ptr("dz"), ptr("dy"), ptr("y"), i32("n")},
	"col_sum":        {ptr("out"), ptr("x"), i32("rows"), i32("cols")},
	"prob_loss":      {ptr("acc"), ptr("out"), ptr("r"), ptr("wt"), i32("n"), f32("bce_w")},
	"prob_loss_grad": {ptr("d"), ptr("out"), ptr("r"), ptr("wt"), ptr("acc"), i32("n"), f32("bce_w"), f32("g")},
	"adam_update": {ptr("w"), ptr("g"), ptr("m"), ptr("v"), f32("step_size"), f32("b1"), f32("b2"), f32("eps"),
		f32("bc2_sqrt"), i32("n")},
	"gather_rows":    {ptr("dst"), ptr("src"), ptr("idx"), i32("rows"), i32("cols"), i32("n_valid")},
	"gather_targets": {ptr("r"), ptr("wt"), ptr("y"), ptr("idx"), i32("rows"), i32("n_valid")},
	"fill":           {ptr("x"), f32("v"), i32("n")},
	"add_into":       {ptr("dst"), ptr("src"), i32("n")},
}
