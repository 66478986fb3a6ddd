package benchmarks

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/kairoscope/kairoscope/engine/model"
)

// The benchmark model, identical on both sides: Features inputs, two ReLU
// hidden layers of one width, the three outputs (mu, s, logit), float32,
// Adam at LR, loss Gaussian NLL + BCEWeight·BCE.
const (
	Features  = 40
	LR        = 1e-3
	BCEWeight = 0.5
	// DataSeed seeds the synthetic data; the models start from their own
	// seeded initialisations (U(±1/√fan_in) on both sides).
	DataSeed = 1
)

// Kinds of configuration: the default model and the three scaling axes.
const (
	KindDefault = "default"
	KindRows    = "rows"
	KindHidden  = "hidden"
	KindBatch   = "batch"
)

// Config is one benchmarked configuration.
type Config struct {
	Kind   string `json:"kind"`
	Rows   int    `json:"rows"`
	Hidden int    `json:"hidden"` // the width of both hidden layers
	Batch  int    `json:"batch"`
}

// Default is the default model on 10,000 rows.
var Default = Config{Kind: KindDefault, Rows: 10000, Hidden: 64, Batch: 256}

// Configs returns the configurations of a run: the default model, then (not
// in quick mode) one axis at a time around it: rows 1k, 100k; hidden 32,
// 256; batch 64, 1024. (The axes' middle values are the default.)
func Configs(quick bool) []Config {
	cs := []Config{Default}
	if quick {
		return cs
	}
	for _, rows := range []int{1000, 100000} {
		cs = append(cs, Config{Kind: KindRows, Rows: rows, Hidden: Default.Hidden, Batch: Default.Batch})
	}
	for _, h := range []int{32, 256} {
		cs = append(cs, Config{Kind: KindHidden, Rows: Default.Rows, Hidden: h, Batch: Default.Batch})
	}
	for _, b := range []int{64, 1024} {
		cs = append(cs, Config{Kind: KindBatch, Rows: Default.Rows, Hidden: Default.Hidden, Batch: b})
	}
	return cs
}

// Name is the configuration's sub-benchmark name.
func (c Config) Name() string {
	return fmt.Sprintf("rows=%d,hidden=%d,batch=%d", c.Rows, c.Hidden, c.Batch)
}

// Steps is the number of optimiser steps per epoch: the last partial batch
// is a step on both sides (Kairoscope pads it with zero-weight rows,
// PyTorch runs it short).
func (c Config) Steps() int { return (c.Rows + c.Batch - 1) / c.Batch }

// Model is the engine's model configuration.
func (c Config) Model() model.Config {
	return model.Config{Hidden: []int{c.Hidden, c.Hidden}, LR: LR, Batch: c.Batch, BCEWeight: BCEWeight}
}

// Epochs is how many timed epochs one run of c takes: about 200,000 rows'
// worth, between 3 and 100 (quick mode: half).
func (c Config) Epochs(quick bool) int {
	e := min(100, max(3, 200000/c.Rows))
	if quick {
		e = max(3, e/2)
	}
	return e
}

// Synthetic returns rows of the benchmark data: x [rows, Features] ~ N(0,1)
// and r [rows], 0 with probability 1/2 and Exp(1) otherwise.
func Synthetic(rows int, seed uint64) (x, r []float32) {
	rng := rand.New(rand.NewPCG(seed, 0x62656e6368))
	x, r = make([]float32, rows*Features), make([]float32, rows)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for i := range r {
		if rng.IntN(2) == 1 {
			r[i] = float32(rng.ExpFloat64())
		}
	}
	return x, r
}

// dataFiles names the files holding rows of data in dir: raw little-endian
// float32, x row-major [rows, Features], r [rows]. PyTorch reads the same
// files (torch.from_file).
func dataFiles(dir string, rows int) (x, r string) {
	return filepath.Join(dir, fmt.Sprintf("x%d.f32", rows)), filepath.Join(dir, fmt.Sprintf("r%d.f32", rows))
}

// WriteData writes Synthetic(rows, DataSeed) to dir (see dataFiles).
func WriteData(dir string, rows int) error {
	x, r := Synthetic(rows, DataSeed)
	xf, rf := dataFiles(dir, rows)
	if err := writeFloats(xf, x); err != nil {
		return err
	}
	return writeFloats(rf, r)
}

// ReadData reads what WriteData wrote.
func ReadData(dir string, rows int) (x, r []float32, err error) {
	xf, rf := dataFiles(dir, rows)
	if x, err = readFloats(xf, rows*Features); err != nil {
		return nil, nil, err
	}
	if r, err = readFloats(rf, rows); err != nil {
		return nil, nil, err
	}
	return x, r, nil
}

func writeFloats(path string, v []float32) error {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("benchmarks: writing data: %w", err)
	}
	return nil
}

// readFloats reads n float32s from path, in chunks, so that reading
// costs the benchmarked process no more than the values themselves.
func readFloats(path string, n int) ([]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("benchmarks: reading data: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Size() != int64(4*n) {
		return nil, fmt.Errorf("benchmarks: %s does not hold %d floats (%v)", path, n, err)
	}
	v := make([]float32, n)
	buf := make([]byte, 64<<10)
	for i := 0; i < n; {
		k := min(len(buf)/4, n-i)
		if _, err := io.ReadFull(f, buf[:4*k]); err != nil {
			return nil, fmt.Errorf("benchmarks: reading %s: %w", path, err)
		}
		for j := range k {
			v[i+j] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*j:]))
		}
		i += k
	}
	return v, nil
}
