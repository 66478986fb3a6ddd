package main

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kairoscope/kairoscope/schema"
)

// buildCUDAWorker builds the real GPU worker (tag gpu, against Debian's
// CUDA toolkit), once, in a folder of its own: beside the kairoscope binary
// every later server of the run would find it and try it first.
var buildCUDAWorker = buildOnce(filepath.Join("gpu", "kairoscope-cuda"), " (run make deps-gpu for the CUDA toolkit)", "-tags", "gpu", "../kairoscope-cuda")

// On this GPU-less machine the real kairoscope-cuda dies in cu's init with
// NoDevice: --device auto runs the job on the CPU and says why, --device gpu
// ends in training_error naming it, and the server serves on.
func TestE2EGPUFallback(t *testing.T) {
	cudaBin, err := buildCUDAWorker()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"KAIROSCOPE_CUDA_WORKER=" + cudaBin}

	t.Run("auto falls back to the CPU", func(t *testing.T) {
		s := startServerWith(t, env, "--device", "auto")
		msgs := runAndCollect(t, s.addr, schema.TypeTrainingComplete)
		start := find(msgs, schema.TypeTrainingStart)
		if start == nil || start["device"] != "cpu" || !strings.Contains(fmt.Sprint(start["fallback_reason"]), "NoDevice") {
			t.Errorf("training_start %v", start)
		}
	})
	t.Run("gpu reports the error", func(t *testing.T) {
		s := startServerWith(t, env, "--device", "gpu")
		msgs := runAndCollect(t, s.addr, schema.TypeTrainingError)
		if e := fmt.Sprint(msgs[len(msgs)-1]["error"]); !strings.Contains(e, "NoDevice") || !strings.Contains(e, "gpu worker") {
			t.Errorf("training_error %q", e)
		}
		resp, err := http.Get("http://" + s.addr + "/")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("health after the failure: %v %v", resp, err)
		}
		var h struct {
			Devices []struct {
				Name string
				OK   bool
			}
		}
		json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if len(h.Devices) != 2 || h.Devices[1].Name != "gpu" {
			t.Errorf("devices %+v", h.Devices)
		}
	})
}

// runAndCollect starts a small run and reads /ws until a message of type
// last.
func runAndCollect(t *testing.T, addr, last string) []map[string]any {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	postRun(t, addr, `{"dataset":"bike","folds":1,"epochs":1}`)
	var msgs []map[string]any
	c.SetReadDeadline(time.Now().Add(time.Minute))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %d messages: %v", len(msgs), err)
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		msgs = append(msgs, m)
		if m["type"] == last {
			return msgs
		}
		if m["type"] == schema.TypeTrainingError || m["type"] == schema.TypeTrainingComplete {
			t.Fatalf("ended with %v, want %s", m, last)
		}
	}
}

func find(msgs []map[string]any, typ string) map[string]any {
	for _, m := range msgs {
		if m["type"] == typ {
			return m
		}
	}
	return nil
}

// The GPU worker's only CUDA library at load time is the driver's
// libcuda.so.1: cuBLAS is loaded at run time (cuda/cublas), so one binary
// starts on machines with cuBLAS 11, 12 or 13. Its dynamic section needs
// nothing else but glibc, and no symbol it imports is versioned by a CUDA
// library's soname (cuBLAS's are: cublasSgemm_v2@libcublas.so.11).
func TestCUDAWorkerNeedsOnlyLibcuda(t *testing.T) {
	cudaBin, err := buildCUDAWorker()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(cudaBin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	needed, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	glibc := map[string]bool{"libc.so.6": true, "libm.so.6": true, "libdl.so.2": true, "libpthread.so.0": true,
		"librt.so.1": true, "ld-linux-x86-64.so.2": true}
	hasCuda := false
	for _, lib := range needed {
		switch {
		case lib == "libcuda.so.1":
			hasCuda = true
		case !glibc[lib]:
			t.Errorf("kairoscope-cuda NEEDs %s (all: %v); want libcuda.so.1 and glibc only", lib, needed)
		}
	}
	if !hasCuda {
		t.Errorf("kairoscope-cuda does not NEED libcuda.so.1 (NEEDED %v): is it still the GPU build?", needed)
	}
	syms, err := f.ImportedSymbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if s.Version != "" && !strings.HasPrefix(s.Version, "GLIBC_") {
			t.Errorf("imported symbol %s@%s (from %s): versioned by a library other than glibc", s.Name, s.Version, s.Library)
		}
		if strings.HasPrefix(s.Name, "cublas") {
			t.Errorf("imported symbol %s: cuBLAS is linked at load time", s.Name)
		}
	}
	t.Logf("NEEDED %v; %d imported symbols", needed, len(syms))
}
