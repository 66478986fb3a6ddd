package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kairoscope/kairoscope/benchmarks"
)

// The check's logic on this GPU-less machine, against fakes of everything
// it starts (shell scripts standing in for nvidia-smi, python3 with
// PyTorch, the GPU worker and the two test binaries): what it reads, what
// it decides and what it writes. FAKE_MODE=bad makes each fake misbehave
// as a broken GPU path would.
var fakes = map[string]string{
	"nvidia-smi": `
case "$*" in
  -L) echo "GPU 0: Fake H200 (UUID: GPU-0000)";;
  --query*) echo "name, driver_version"; echo "Fake H200, 580.00";;
  *) echo "| NVIDIA-SMI 580.00  Driver Version: 580.00  CUDA Version: 13.0 |";;
esac`,
	"python3": `
case "$1" in
  -c) echo /fake/nvidia/cu13/lib/libcublas.so.13; echo /fake/nvidia/cu13/lib/libcublasLt.so.13
      echo /fake/nvidia/cu12/lib/libcublas.so.12.4.5;;
  */hog.py) echo '{"held": 140000000000, "free": 1073741824, "total": 150000000000}'; cat >/dev/null;;
  */torch_mlp.py)
    shift; rows=0; batch=0
    while [ $# -gt 0 ]; do case "$1" in --rows) rows=$2;; --batch) batch=$2;; esac; shift; done
    steps=$(( (rows + batch - 1) / batch ))
    echo "{\"s_per_epoch\": 0.004, \"loss\": 1.3, \"steps_per_epoch\": $steps, \"modes\": {\"epoch\": {\"s_per_epoch\": 0.004, \"loss\": 1.3}, \"step\": {\"s_per_epoch\": 0.009, \"loss\": 1.3}, \"graph\": {\"error\": \"RuntimeError: capture failed\"}}}";;
esac`,
	"devicetest.test": `
case "$*" in
  *TestGPUInfo*)
    if [ -z "$KAIROSCOPE_CUBLAS" ]; then echo "    gpu_test.go:26: no usable cuBLAS: libcublas.so.13: cannot open shared object file"; echo FAIL; exit 1; fi
    echo "    gpu_test.go:30: device: Fake H200, compute capability 9.0, 139.8 GiB, driver CUDA 13.0, cuBLAS 13.0.0 (${KAIROSCOPE_CUBLAS})"; echo PASS;;
  *)
    echo "=== RUN   TestGPU"
    echo "    --- PASS: TestGPU/bias_act (0.01s)"
    echo "    --- PASS: TestGPU/sgemm/formula (0.02s)"
    if [ "$FAKE_MODE" = bad ]; then echo "        training.go:76: epoch 1 Loss: device 2, CPU 1"; echo "    --- FAIL: TestGPU/training (0.10s)"; echo FAIL; exit 1; fi
    echo "    --- PASS: TestGPU/training (0.10s)"; echo PASS;;
esac`,
	"kairoscope-cuda": `
spec=$(cat)
echo '{"level":"info","device":"gpu: Fake H200 (compute capability 9.0, 139.8 GiB)","blas":"cuBLAS 13.0.0 (x)","driver":"CUDA 13.0","message":"job"}' >&2
device='gpu: Fake H200 (compute capability 9.0, 139.8 GiB)'
[ "$FAKE_MODE" = bad ] && device=cpu
echo "{\"type\":\"training_start\",\"device\":\"$device\"}"
case "$spec" in
  *on_oom*) [ "$FAKE_MODE" = bad ] && { echo '{"type":"training_complete"}'; exit 0; }
           echo '{"type":"training_error","error":"CUDA out of memory: alloc of 1.75 GiB failed (1.00 GiB free of 139.8 GiB); lower --batch-size or --hidden"}'; exit 1;;
  *) echo '{"type":"epoch_metrics","fold_id":0,"val_loss":0.97}'; echo '{"type":"epoch_metrics","fold_id":0,"val_loss":0.91}'; echo '{"type":"fold_complete","fold_id":0}'; echo '{"type":"training_complete"}';;
esac`,
	"benchmarks-gpu.test": `
for a in "$@"; do case "$a" in -test.bench=*) name=${a#-test.bench=^}; name=${name%$}; name=${name/\$\/^//};; esac; done
[ "$FAKE_MODE" = bad ] && { echo "no usable cuBLAS" >&2; exit 1; }
echo "$name-16  5  1000 ns/op  0.002 s/epoch  1.31 loss  1048576 device-B"`,
}

// fakeCheck prepares a folder as make gpu-check would (specs, counts; no
// binaries: the fakes stand in), runs the check with FAKE_MODE=mode and
// returns the report and the results.
func fakeCheck(t *testing.T, mode string) (string, results) {
	t.Helper()
	root := t.TempDir()
	bin, dir, out := filepath.Join(root, "bin"), filepath.Join(root, "prepared"), filepath.Join(root, "out")
	os.MkdirAll(bin, 0o755)
	for name, script := range fakes {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/bash\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for path, v := range map[string]any{trainSpec: trainJob, oomSpec: oomJob, manifestFile: manifest{Commit: "abc123"},
		countsFile: []*benchmarks.EmulatorCounts{{Config: benchmarks.Default,
			PerStep: benchmarks.Counts{LaunchesTotal: 15, Gemms: 8}}}} {
		if err := writeJSON(filepath.Join(dir, path), v); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("FAKE_MODE", mode)
	t.Setenv("KAIROSCOPE_CUBLAS", "")
	os.Unsetenv("KAIROSCOPE_CUBLAS")
	repo, _ := filepath.Abs("../../..")
	err := runCheck(context.Background(), []string{"-dir", dir, "-bin", bin, "-out", out, "-repo", repo,
		"-python", filepath.Join(bin, "python3"), "-nvidia-smi", filepath.Join(bin, "nvidia-smi"), "-runs", "2"})
	if err != nil {
		t.Fatal(err)
	}
	report, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	var res results
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil || json.Unmarshal(b, &res) != nil {
		t.Fatalf("results.json: %v", err)
	}
	for _, f := range []string{"devicetest.txt", "logs.tgz"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	return string(report), res
}

func statuses(res results) map[string]string {
	m := map[string]string{}
	for _, s := range res.Sections {
		m[s.Title] = s.Status + ": " + s.Summary
	}
	return m
}

func TestCheckPassesOnAWorkingGPU(t *testing.T) {
	report, res := fakeCheck(t, "good")
	st := statuses(res)
	for title, want := range map[string]string{
		"nvidia-smi":      "PASS: Fake H200",
		"cuBLAS":          "PASS: not found by soname; KAIROSCOPE_CUBLAS=/fake/nvidia/cu13/lib/libcublas.so.13: Fake H200",
		"Device suite":    "PASS: 3 passed, 0 failed",
		"Training run":    `PASS: training_start.device "gpu: Fake H200`,
		"Out of memory":   "PASS: training_error: CUDA out of memory: alloc of 1.75 GiB",
		"Epoch benchmark": "PASS: 7 of 7 configurations measured; the GPU engine at most PyTorch's epoch time on 7",
	} {
		if !strings.HasPrefix(st[title], want) {
			t.Errorf("%s: %q, want it to start with %q", title, st[title], want)
		}
	}
	if len(res.CUBLAS) != 1 || len(res.Bench) != 7 || res.Bench[0].Ratio != 0.5 || res.Bench[0].Torch["step"].SPerEpoch != 0.009 {
		t.Errorf("results: cuBLAS %v, bench %+v", res.CUBLAS, res.Bench)
	}
	for _, want := range []string{
		"# Kairoscope GPU check: Fake H200",
		"| default | 10000 | 64 | 256 | 40 | 20 | 0.00200 | 1.0 MiB | 0.00400 | 0.00900 | – | **0.50** | 15 | 8 | 0 |",
		"PyTorch graph mode: RuntimeError: capture failed",
		"- fold 0: last epoch's val_loss 0.91",
		"Worker log: gpu: Fake H200 (compute capability 9.0, 139.8 GiB); cuBLAS 13.0.0 (x); driver CUDA 13.0",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q:\n%s", want, report)
		}
	}
}

func TestCheckFailsWhatIsBroken(t *testing.T) {
	_, res := fakeCheck(t, "bad")
	st := statuses(res)
	for title, want := range map[string]string{
		"Device suite":    "FAIL: 2 passed, 1 failed: training",
		"Training run":    `FAIL: first message training_start, device "cpu"`,
		"Out of memory":   `FAIL: first message training_start on device "cpu"`,
		"Epoch benchmark": "FAIL: 0 of 7 configurations measured",
	} {
		if !strings.HasPrefix(st[title], want) {
			t.Errorf("%s: %q, want it to start with %q", title, st[title], want)
		}
	}
}

func TestCublasCandidatesNewestMajorFirst(t *testing.T) {
	got := cublasCandidates("/a/cu12/libcublas.so.12.4.5\n/a/cu12/libcublas.so.12\n/a/cu13/libcublasLt.so.13\n/a/cu13/libcublas.so.13\n/usr/lib/libcublas.so\n")
	want := []string{"/a/cu13/libcublas.so.13", "/a/cu12/libcublas.so.12.4.5"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%v, want %v", got, want)
	}
}
