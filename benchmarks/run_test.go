package benchmarks

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `make bench-quick` end to end with one run a side: it builds the
// benchmark binaries, times the CPU engine (and the PyTorch peer when
// Debian's python3-torch is there), prints the table and writes a results
// file that reads back.
func TestRunQuick(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "quick.json")
	var stdout, stderr bytes.Buffer
	if err := Run(ctx, []string{"-quick", "-runs", "1", "-out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	t.Logf("\n%s", stdout.String())
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Schema != Schema || res.Mode != "quick" || len(res.Configs) != 1 {
		t.Fatalf("results: schema %q, mode %q, %d configs; want %q, quick, 1", res.Schema, res.Mode, len(res.Configs), Schema)
	}
	c := res.Configs[0]
	if c.Kairoscope == nil || c.Kairoscope.SPerEpoch <= 0 || c.Kairoscope.PeakRSSBytes <= 0 {
		t.Errorf("Kairoscope's side: %+v; want a time and a peak RSS", c.Kairoscope)
	}
	if res.Machine.Torch == "" {
		if res.Machine.TorchUnavailable == "" || !strings.Contains(stdout.String(), "PyTorch unavailable") {
			t.Error("no PyTorch and no reason why")
		}
	} else if c.Torch == nil || c.Ratio != c.Kairoscope.SPerEpoch/c.Torch.SPerEpoch {
		t.Errorf("PyTorch %s ran, but the side is %+v and the ratio %v", res.Machine.Torch, c.Torch, c.Ratio)
	}
	if !res.GPU.Available {
		if res.GPU.Reason == "" || res.GPU.Emulator == nil || res.GPU.Emulator.PerStep.Gemms != 8 {
			t.Errorf("no GPU: want a reason and the emulator's counts, got %+v", res.GPU)
		}
		if !strings.Contains(stdout.String(), "GPU unavailable: ") {
			t.Error("the table does not say the GPU is unavailable")
		}
	}
	if !strings.Contains(stdout.String(), "Kairoscope/PyTorch") {
		t.Error("the table has no ratio column")
	}
}

// With a GPU the table gains the GPU engine's columns: its time, device
// memory and ratio to PyTorch, on the configurations it ran.
func TestTableWithGPU(t *testing.T) {
	res := &Results{Mode: "quick", Method: Method{Runs: 1, WarmupEpochs: 1, TorchThreads: 1},
		GPU: GPUReport{Available: true, Device: "GPU 0: Test GPU"}}
	res.Machine.Torch = "1.13"
	res.Configs = []ConfigResult{{Config: Default, Steps: 40, Epochs: 10,
		Kairoscope: &Side{SPerEpoch: 0.01, SamplesPerS: 1e6, PeakRSSBytes: 26 << 20},
		GPU:        &Side{SPerEpoch: 0.002, SamplesPerS: 5e6, DeviceBytes: 3 << 20},
		Torch:      &Side{SPerEpoch: 0.025, SamplesPerS: 4e5, PeakRSSBytes: 242 << 20},
		Ratio:      0.4, GPURatio: 0.08}}
	var out bytes.Buffer
	printTable(&out, res)
	s := out.String()
	t.Logf("\n%s", s)
	lines := strings.Split(s, "\n")
	var head, row string
	for i, l := range lines {
		if strings.Contains(l, "GPU/PyTorch") && i+1 < len(lines) {
			head, row = l, lines[i+1]
		}
	}
	if head == "" {
		t.Fatal("no GPU/PyTorch column")
	}
	for _, want := range []string{"0.0020", "5,000,000", "3.0 MiB", "0.40", "0.08"} {
		if !strings.Contains(row, want) {
			t.Errorf("row %q lacks %q", row, want)
		}
	}
	if !strings.Contains(s, "GPU: GPU 0: Test GPU") || strings.Contains(s, "unavailable") {
		t.Error("the footer does not name the GPU")
	}
}
