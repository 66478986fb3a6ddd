package benchmarks

import (
	"time"

	"github.com/kairoscope/kairoscope/benchmarks/hubload"
)

// Schema names the layout of the JSON results file.
const Schema = "kairoscope-bench/1"

// Results is what a run writes to results/<mode>.json.
type Results struct {
	Schema  string         `json:"schema"`
	Mode    string         `json:"mode"` // "full" or "quick"
	Started time.Time      `json:"started"`
	Seconds float64        `json:"seconds"` // the whole run's wall time
	Machine Machine        `json:"machine"`
	Method  Method         `json:"method"`
	GPU     GPUReport      `json:"gpu"`
	Configs []ConfigResult `json:"configs"`
	// Hub is the hub under load (-hub-clients; absent when skipped).
	Hub *hubload.Result `json:"hub,omitempty"`
	// Forecast is predict against series length (-forecast-runs; absent
	// when skipped).
	Forecast *ForecastResult `json:"forecast,omitempty"`
}

// Machine is where the run took place.
type Machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	OS     string `json:"os"`
	Kernel string `json:"kernel,omitempty"`
	Go     string `json:"go"`
	// Engine is what the CPU engine ran on; PureGo, when Engine links
	// OpenBLAS, is the pure-Go build's (the kairoscope_purego side).
	Engine Engine  `json:"engine"`
	PureGo *Engine `json:"engine_purego,omitempty"`
	// Torch is PyTorch's version, or "" with TorchUnavailable saying why.
	Torch            string `json:"torch,omitempty"`
	TorchUnavailable string `json:"torch_unavailable,omitempty"`
	Python           string `json:"python"`
}

// Method says how the numbers were taken.
type Method struct {
	Runs         int    `json:"runs"`          // per configuration and side
	WarmupEpochs int    `json:"warmup_epochs"` // untimed, before each run's timed epochs
	TorchThreads int    `json:"torch_threads"`
	Order        string `json:"order"`
	Statistic    string `json:"statistic"`
	Data         string `json:"data"`
	LastBatch    string `json:"last_batch"`
}

// GPUReport is the GPU engine's availability and, without a GPU, the
// emulator's count of what training launches and copies.
type GPUReport struct {
	Available bool            `json:"available"`
	Reason    string          `json:"reason,omitempty"` // why not available
	Device    string          `json:"device,omitempty"`
	Emulator  *EmulatorCounts `json:"emulator,omitempty"`
}

// ConfigResult is one configuration's numbers on every side that ran.
type ConfigResult struct {
	Config
	Steps      int   `json:"steps_per_epoch"`
	Epochs     int   `json:"epochs"` // timed epochs per run
	Kairoscope *Side `json:"kairoscope"`
	// PureGo is the pure-Go build (gonum BLAS, no cgo) on the default
	// configuration, when Kairoscope links OpenBLAS.
	PureGo *Side `json:"kairoscope_purego,omitempty"`
	GPU    *Side `json:"kairoscope_gpu,omitempty"`
	Torch  *Side `json:"torch,omitempty"`
	// Ratio is Kairoscope's median s/epoch over PyTorch's (< 1: faster).
	Ratio       float64 `json:"ratio,omitempty"`
	PureGoRatio float64 `json:"purego_ratio,omitempty"`
	GPURatio    float64 `json:"gpu_ratio,omitempty"` // the GPU engine's over PyTorch's
}

// Side is one engine's runs of a configuration.
type Side struct {
	SPerEpoch    float64   `json:"s_per_epoch"` // median over runs
	SamplesPerS  float64   `json:"samples_per_s"`
	PeakRSSBytes int64     `json:"peak_rss_bytes"` // the largest of the runs' peak RSS
	Runs         []float64 `json:"runs_s_per_epoch"`
	// DeviceBytes is the device memory in use during training (GPU only).
	DeviceBytes int64 `json:"device_bytes,omitempty"`
	// Per epoch, from ReportAllocs (Kairoscope only).
	AllocsPerEpoch float64 `json:"allocs_per_epoch,omitempty"`
	BytesPerEpoch  float64 `json:"bytes_per_epoch,omitempty"`
	Loss           float64 `json:"loss"` // the last timed epoch's loss, median over runs
}

// run is one process's measurement.
type run struct {
	sPerEpoch, loss       float64
	rss, deviceBytes      int64
	allocs, bytesPerEpoch float64
	modes                 map[string]run // the PyTorch peer's per --modes entry (GPU check)
	modeErrs              []string       // and the modes that failed
}

// summarise makes a Side of runs.
func summarise(runs []run, rows int) *Side {
	if len(runs) == 0 {
		return nil
	}
	s := &Side{}
	var losses, allocs, bytes []float64
	for _, r := range runs {
		s.Runs = append(s.Runs, r.sPerEpoch)
		losses = append(losses, r.loss)
		allocs = append(allocs, r.allocs)
		bytes = append(bytes, r.bytesPerEpoch)
		s.PeakRSSBytes = max(s.PeakRSSBytes, r.rss)
		s.DeviceBytes = max(s.DeviceBytes, r.deviceBytes)
	}
	s.SPerEpoch = median(s.Runs)
	if s.SPerEpoch > 0 {
		s.SamplesPerS = float64(rows) / s.SPerEpoch
	}
	s.Loss = median(losses)
	s.AllocsPerEpoch = median(allocs)
	s.BytesPerEpoch = median(bytes)
	return s
}

// median is the hub benchmark's: one definition for every median reported.
var median = hubload.Median
