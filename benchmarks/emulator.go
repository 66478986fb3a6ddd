package benchmarks

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/kairoscope/kairoscope/cuda"
	"github.com/kairoscope/kairoscope/cuda/emulator"
)

// EmulatorCounts is what the GPU engine asks of its device, counted on the
// CPU emulator. An epoch over R rows in S steps costs S·PerStep + PerEpoch
// + R·PerRow; the first epoch on new data (a fold) costs PerFold more.
type EmulatorCounts struct {
	Config   Config `json:"config"`
	PerStep  Counts `json:"per_step"`
	PerEpoch Counts `json:"per_epoch"`
	PerRow   Counts `json:"per_row"`
	PerFold  Counts `json:"per_fold"`
	Rows     int    `json:"rows"` // of the fold PerFold and PeakDeviceBytes were measured on
	// PeakDeviceBytes is the most device memory allocated at once while
	// training on Rows rows.
	PeakDeviceBytes int64 `json:"peak_device_bytes"`
}

// Counts are device operations.
type Counts struct {
	Launches      map[string]int `json:"launches"` // per kernel
	LaunchesTotal int            `json:"launches_total"`
	Gemms         int            `json:"gemms"`
	BytesHtoD     int64          `json:"bytes_htod"`
	BytesDtoH     int64          `json:"bytes_dtoh"`
	HostSyncs     int            `json:"host_syncs"`
}

func countsOf(c emulator.Counters) Counts {
	return Counts{Launches: maps.Clone(c.Launches), Gemms: c.Gemms, BytesHtoD: c.BytesHtoD, BytesDtoH: c.BytesDtoH,
		HostSyncs: c.HostSyncs}.add(Counts{}, 0)
}

// add returns a + k·b, dropping kernels that come to 0 and recounting
// the total.
func (a Counts) add(b Counts, k int) Counts {
	d := Counts{Launches: map[string]int{}, Gemms: a.Gemms + k*b.Gemms, BytesHtoD: a.BytesHtoD + int64(k)*b.BytesHtoD,
		BytesDtoH: a.BytesDtoH + int64(k)*b.BytesDtoH, HostSyncs: a.HostSyncs + k*b.HostSyncs}
	for name := range a.Launches {
		d.Launches[name] = a.Launches[name]
	}
	for name, v := range b.Launches {
		d.Launches[name] += k * v
	}
	for name, v := range d.Launches {
		if v == 0 {
			delete(d.Launches, name)
		}
		d.LaunchesTotal += v
	}
	return d
}

// div returns a/k, exact when a is k times a whole count.
func (a Counts) div(k int) Counts {
	d := Counts{Launches: map[string]int{}, Gemms: a.Gemms / k, BytesHtoD: a.BytesHtoD / int64(k),
		BytesDtoH: a.BytesDtoH / int64(k), HostSyncs: a.HostSyncs / k}
	for name, v := range a.Launches {
		d.Launches[name] = v / k
	}
	return d.add(Counts{}, 0)
}

// String is one line: "19 launches (bias_act 3, ...), 9 GEMMs, 0 B in, 0 B out, 0 host syncs".
func (a Counts) String() string {
	names := slices.Sorted(maps.Keys(a.Launches))
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, a.Launches[n])
	}
	launches := fmt.Sprintf("%d launches", a.LaunchesTotal)
	if len(parts) > 0 {
		launches += " (" + strings.Join(parts, ", ") + ")"
	}
	return fmt.Sprintf("%s, %d GEMMs, %s host→device, %s device→host, %d host syncs",
		launches, a.Gemms, bytesString(a.BytesHtoD), bytesString(a.BytesDtoH), a.HostSyncs)
}

// CountEmulator trains c's model (c.Rows is ignored) through the GPU
// engine's executor on a fresh emulator and splits its device operations
// into per step, per epoch, per row and per fold, from epochs over B+1 and
// 2B rows (2 steps each) and 4B rows (4 steps), B = c.Batch: small, as the
// emulator is slow.
func CountEmulator(ctx context.Context, c Config) (*EmulatorCounts, error) {
	dev := emulator.New(emulator.Options{})
	defer dev.Close()
	tr, err := cuda.NewTrainer(dev)(Features, c.Model(), 1)
	if err != nil {
		return nil, fmt.Errorf("benchmarks: emulator: %w", err)
	}
	defer tr.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	// epochs returns the counts of a first and a second epoch on rows.
	epochs := func(rows int) (first, later Counts, err error) {
		x, r := Synthetic(rows, DataSeed)
		var got [2]Counts
		for i := range got {
			dev.ResetCounters()
			if _, err := tr.Epoch(ctx, x, r, rng); err != nil {
				return first, later, fmt.Errorf("benchmarks: emulator epoch: %w", err)
			}
			got[i] = countsOf(dev.Counters())
		}
		return got[0], got[1], nil
	}
	b := c.Batch
	_, e1, err := epochs(b + 1)
	if err != nil {
		return nil, err
	}
	_, e2, err := epochs(2 * b)
	if err != nil {
		return nil, err
	}
	first, e3, err := epochs(4 * b)
	if err != nil {
		return nil, err
	}
	ec := &EmulatorCounts{Config: c, Rows: 4 * b, PeakDeviceBytes: dev.Counters().PeakBytes}
	ec.Config.Rows = 0
	ec.PerRow = e2.add(e1, -1).div(b - 1)
	ec.PerStep = e3.add(e2, -1).add(ec.PerRow, -2*b).div(2)
	ec.PerEpoch = e2.add(ec.PerStep, -2).add(ec.PerRow, -2*b)
	ec.PerFold = first.add(e3, -1)
	return ec, nil
}
