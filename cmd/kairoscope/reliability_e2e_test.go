//go:build linux

package main

// Faults end to end, each on the built server with real workers: a worker
// killed mid-epoch, one that hangs, one that floods stdout or stderr, an
// unwritable and a full reports folder (tmpfs mounts: the tests run as
// root, as CI does, and fail rather than skip when they cannot mount), a
// /ws/predict client that leaves mid-pipeline, and the server killed
// mid-run and restarted. Every one ends in a clear error (or the run's
// next attempt), loses no earlier report, leaves no temporary file, and
// the server serves on.

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const relWait = 2 * time.Minute // any one fault, from the run's start to its end

// relFollower reads /ws (every run, plain) until the test ends.
type relFollower struct {
	mu   sync.Mutex
	msgs []map[string]any
	err  error
}

func relFollow(t *testing.T, addr, query string) *relFollower {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws"+query, nil)
	if err != nil {
		t.Fatalf("dialing /ws: %v", err)
	}
	f := &relFollower{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, b, err := conn.ReadMessage()
			var m map[string]any
			if err == nil {
				err = json.Unmarshal(b, &m)
			}
			f.mu.Lock()
			if err != nil {
				f.err = err
				f.mu.Unlock()
				return
			}
			f.msgs = append(f.msgs, m)
			f.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return f
}

// wait returns the first message of run that cond accepts, within d.
func (f *relFollower) wait(t *testing.T, run string, d time.Duration, what string, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		f.mu.Lock()
		for _, m := range f.msgs {
			if m["run_id"] == run && cond(m) {
				f.mu.Unlock()
				return m
			}
		}
		err := f.err
		f.mu.Unlock()
		if err != nil {
			t.Fatalf("/ws ended before %s of %s: %v", what, run, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s of %s within %v", what, run, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ended waits for run's terminal message.
func (f *relFollower) ended(t *testing.T, run string, d time.Duration) map[string]any {
	t.Helper()
	return f.wait(t, run, d, "the end", func(m map[string]any) bool {
		return m["type"] == "training_complete" || m["type"] == "training_error"
	})
}

func isTypeOf(ty string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["type"] == ty }
}

// relWorkers returns the pids of the worker processes of server pid.
func relWorkers(pid int) []int {
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if _, ppid, _, err := procStat(p); err != nil || ppid != pid {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if strings.Contains(string(cmd), "worker") {
			out = append(out, p)
		}
	}
	return out
}

// relState returns run id's record state.
func relState(t *testing.T, addr, id string) (state, errText string) {
	t.Helper()
	c := &http.Client{Timeout: httpTimeout}
	resp, err := c.Get("http://" + addr + "/api/runs/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ State, Error string }
	json.NewDecoder(resp.Body).Decode(&r)
	return r.State, r.Error
}

// relServesOn checks that the server still answers and trains a small
// run to its end, on the CPU worker (a fake GPU worker of the test would
// take a run of device auto).
func relServesOn(t *testing.T, srv *server, f *relFollower) {
	t.Helper()
	if resp, err := (&http.Client{Timeout: httpTimeout}).Get("http://" + srv.addr + "/"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the server after the fault: %v %v", resp, err)
	}
	id := postRun(t, srv.addr, `{"dataset":"bike","folds":1,"epochs":2,"device":"cpu"}`)
	if m := f.ended(t, id, smallRunWait); m["type"] != "training_complete" {
		t.Errorf("a run after the fault ended with %v", m)
	}
}

// relTemps lists temporary files (names starting with '.') under dir.
func relTemps(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".") && p != dir {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// relMount mounts a tmpfs of size at a new folder, read-only or not, and
// unmounts it at the end. Root is needed (CI runs as root): a failure to
// mount fails the test, never skips it.
func relMount(t *testing.T, size string, readOnly bool) string {
	t.Helper()
	dir := t.TempDir()
	opts := "size=" + size
	if readOnly {
		opts += ",ro"
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs (needs root, as make test and CI have): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// A worker killed with SIGKILL mid-epoch ends its run in training_error
// saying so; the server serves on.
func TestE2EFaultWorkerKilled(t *testing.T) {
	srv := startServer(t)
	f := relFollow(t, srv.addr, "")
	id := postRun(t, srv.addr, longRunRequest)
	f.wait(t, id, firstEpochWait, "an epoch", isTypeOf("epoch_metrics"))
	ws := relWorkers(srv.cmd.Process.Pid)
	if len(ws) != 1 {
		t.Fatalf("workers %v, want one", ws)
	}
	syscall.Kill(ws[0], syscall.SIGKILL)
	m := f.ended(t, id, relWait)
	if e := fmt.Sprint(m["error"]); m["type"] != "training_error" || !strings.Contains(e, "killed") {
		t.Errorf("ended with %v", m)
	}
	waitFor(t, "the run failed", func() bool { s, _ := relState(t, srv.addr, id); return s == "failed" })
	relServesOn(t, srv, f)
}

// A worker that hangs (here stopped with SIGSTOP: alive, silent) is
// stopped after --worker-silence and its run fails naming the limit.
func TestE2EFaultWorkerHangs(t *testing.T) {
	srv := startServerWith(t, nil, "--worker-silence", "2s")
	f := relFollow(t, srv.addr, "")
	id := postRun(t, srv.addr, longRunRequest)
	f.wait(t, id, firstEpochWait, "an epoch", isTypeOf("epoch_metrics"))
	ws := relWorkers(srv.cmd.Process.Pid)
	if len(ws) != 1 {
		t.Fatalf("workers %v, want one", ws)
	}
	syscall.Kill(ws[0], syscall.SIGSTOP)
	start := time.Now()
	m := f.ended(t, id, relWait)
	if e := fmt.Sprint(m["error"]); m["type"] != "training_error" || !strings.Contains(e, "--worker-silence") {
		t.Errorf("ended with %v", m)
	}
	t.Logf("a hung worker's run ended %v after it stopped", time.Since(start).Round(100*time.Millisecond))
	waitFor(t, "the hung worker to be gone", func() bool { return len(relWorkers(srv.cmd.Process.Pid)) == 0 })
	relServesOn(t, srv, f)
}

// relFakeGPU writes a worker script for KAIROSCOPE_CUDA_WORKER: a run
// asking for device gpu runs it instead of a real worker.
func relFakeGPU(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-worker")
	if err := os.WriteFile(p, []byte("#!/bin/sh\ncat > /dev/null\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// A worker flooding stderr finishes its run; the server's log gets at most
// --worker-log-lines a second of it and a count of the rest.
func TestE2EFaultWorkerFloodsStderr(t *testing.T) {
	script := relFakeGPU(t, `echo '{"type":"training_start","use_cv":false,"total_folds":1,"total_epochs":1}'
i=0; while [ $i -lt 200000 ]; do echo '{"level":"warn","message":"flood"}'; i=$((i+1)); done >&2
echo '{"type":"training_complete","folds_completed":1,"summary_path":"none"}'
`)
	srv := startServerWith(t, []string{"KAIROSCOPE_CUDA_WORKER=" + script}, "--worker-log-lines", "50")
	f := relFollow(t, srv.addr, "")
	id := postRun(t, srv.addr, `{"device":"gpu"}`)
	start := time.Now()
	if m := f.ended(t, id, relWait); m["type"] != "training_complete" {
		t.Fatalf("ended with %v", m)
	}
	elapsed := time.Since(start)
	logs := srv.logs.String()
	relayed := strings.Count(logs, `"message":"worker log"`)
	if limit := 50 + int(elapsed.Seconds()+1)*50; relayed > limit {
		t.Errorf("%d of 200,000 lines relayed in %v, want at most %d", relayed, elapsed, limit)
	}
	if !strings.Contains(logs, "worker stderr flood") {
		t.Error("the log does not say lines were dropped")
	}
	t.Logf("200,000 stderr lines: %d relayed in %v", relayed, elapsed.Round(10*time.Millisecond))
}

// A worker flooding stdout with valid messages is stopped at
// --max-job-bytes and its run fails naming the limit; the server serves on.
func TestE2EFaultWorkerFloodsStdout(t *testing.T) {
	script := relFakeGPU(t, `echo '{"type":"training_start","use_cv":false,"total_folds":1,"total_epochs":1}'
while :; do echo '{"type":"epoch_metrics","fold_id":0,"epoch":0,"val_auc":0.5}'; done
`)
	srv := startServerWith(t, []string{"KAIROSCOPE_CUDA_WORKER=" + script}, "--max-job-bytes", "1000000")
	// A live client of the flood is itself too slow for it (closed 4008):
	// read the run's log once it has ended.
	id := postRun(t, srv.addr, `{"device":"gpu"}`)
	waitFor(t, "the flooding run to fail", func() bool { s, _ := relState(t, srv.addr, id); return s == "failed" })
	if _, e := relState(t, srv.addr, id); !strings.Contains(e, "--max-job-bytes") {
		t.Errorf("the run's error %q", e)
	}
	f := relFollow(t, srv.addr, "?run="+id)
	if m := f.ended(t, id, relWait); m["type"] != "training_error" || !strings.Contains(fmt.Sprint(m["error"]), "--max-job-bytes") {
		t.Errorf("the log ends with %v", m)
	}
	waitFor(t, "the flooding worker to be gone", func() bool { return len(relWorkers(srv.cmd.Process.Pid)) == 0 })
	relServesOn(t, srv, relFollow(t, srv.addr, ""))
}

// An unwritable reports folder stops serve at start, naming it; one that
// becomes unwritable fails the next run before it trains.
func TestE2EFaultReportsUnwritable(t *testing.T) {
	ro := relMount(t, "1m", true)
	bin, err := buildKairoscope()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), serverStartWait)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--datasets", t.TempDir(), "--reports", ro).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "--reports: reports folder "+ro+" cannot be written") ||
		!strings.Contains(string(out), "read-only file system") {
		t.Errorf("serve on a read-only reports folder: %v\n%s", err, out)
	}

	rw := relMount(t, "1m", false)
	srv := startServerWith(t, nil, "--reports", rw)
	f := relFollow(t, srv.addr, "")
	if out, err := exec.Command("mount", "-o", "remount,ro", rw).CombinedOutput(); err != nil {
		t.Fatalf("remounting read-only: %v %s", err, out)
	}
	id := postRun(t, srv.addr, longRunRequest)
	m := f.ended(t, id, relWait)
	if e := fmt.Sprint(m["error"]); m["type"] != "training_error" || !strings.Contains(e, "cannot be written") {
		t.Errorf("ended with %v", m)
	}
	f.mu.Lock()
	for _, m := range f.msgs {
		if m["run_id"] == id && m["type"] == "epoch_metrics" {
			t.Errorf("the run trained before finding its folder unwritable")
			break
		}
	}
	f.mu.Unlock()
	exec.Command("mount", "-o", "remount,rw", rw).Run()
	relServesOn(t, srv, f)
}

// A reports folder that fills up mid-run fails the run with the disk's
// error; the folds already written stay whole and no temporary file is
// left.
func TestE2EFaultReportsFull(t *testing.T) {
	full := relMount(t, "64k", false) // two folds' predictions (about 23 KB each), not five
	srv := startServerWith(t, nil, "--reports", full)
	f := relFollow(t, srv.addr, "")
	id := postRun(t, srv.addr, `{"dataset":"bike","folds":5,"epochs":3}`)
	m := f.ended(t, id, relWait)
	if e := fmt.Sprint(m["error"]); m["type"] != "training_error" || !strings.Contains(e, "no space left on device") {
		t.Fatalf("ended with %v", m)
	}
	csvs := checkReports(t, full)
	if len(csvs) == 0 {
		t.Error("no fold's predictions were kept")
	}
	if tmp := relTemps(full); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	t.Logf("reports full: %q; %d whole predictions files kept", m["error"], len(csvs))
	if resp, err := (&http.Client{Timeout: httpTimeout}).Get("http://" + srv.addr + "/"); err != nil || resp.StatusCode != 200 {
		t.Errorf("the server after a full disk: %v %v", resp, err)
	}
}

// A /ws/predict client that leaves mid-pipeline: its forecast is cancelled
// after --forecast-grace, the worker stops, and the next client gets its
// forecast.
func TestE2EFaultPredictClientLeaves(t *testing.T) {
	srv := startServerWith(t, nil, "--forecast-grace", "1s")
	c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.addr+"/ws/predict?dataset=transit", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(forecastWait))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"status":"steps"`) {
			break // training: the pipeline is under way
		}
	}
	c.Close()
	waitFor(t, "the abandoned forecast's worker to stop", func() bool { return len(relWorkers(srv.cmd.Process.Pid)) == 0 })
	if !strings.Contains(srv.logs.String(), "forecast cancelled: its clients left") {
		t.Error("the log does not say the forecast was cancelled")
	}
	c2, _, err := websocket.DefaultDialer.Dial("ws://"+srv.addr+"/ws/predict", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetReadDeadline(time.Now().Add(forecastWait))
	for {
		_, b, err := c2.ReadMessage()
		if err != nil {
			t.Fatalf("the next forecast: %v", err)
		}
		if strings.Contains(string(b), `"status":"output"`) {
			break
		}
	}
}

// The server killed with SIGKILL mid-run and restarted on its folders: an
// earlier run's reports are intact and readable, no temporary file is
// left, the killed run goes on as its next attempt to its end, and the
// server serves on.
func TestE2EFaultServerKilled(t *testing.T) {
	srv := startServer(t)
	f := relFollow(t, srv.addr, "")
	done := postRun(t, srv.addr, smallRunRequest)
	if m := f.ended(t, done, smallRunWait); m["type"] != "training_complete" {
		t.Fatalf("the first run: %v", m)
	}
	before := map[string][]byte{}
	filepath.WalkDir(filepath.Join(srv.reports, done), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			before[p], _ = os.ReadFile(p)
		}
		return nil
	})
	id := postRun(t, srv.addr, longRunRequest)
	f.wait(t, id, firstEpochWait, "fold 1", func(m map[string]any) bool { return m["type"] == "epoch_metrics" && m["fold_id"] == 1.0 })
	srv.kill(t)
	if len(before) == 0 {
		t.Fatal("the first run wrote no report")
	}

	srv2 := startServerWith(t, nil, "--data-dir", srv.data, "--reports", srv.reports, "--datasets", srv.datasets)
	for p, b := range before {
		if got, err := os.ReadFile(p); err != nil || string(got) != string(b) {
			t.Errorf("%s changed or lost across the kill: %v", p, err)
		}
	}
	resp, err := (&http.Client{Timeout: httpTimeout}).Get("http://" + srv2.addr + "/api/runs/" + done + "/reports/summary.json")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("the first run's summary after the restart: %v %v", resp, err)
	} else {
		var v map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Errorf("summary.json unreadable: %v", err)
		}
		resp.Body.Close()
	}
	f2 := relFollow(t, srv2.addr, "?run="+id)
	m := f2.ended(t, id, relWait)
	if m["type"] != "training_complete" || m["attempt"] != 2.0 {
		t.Errorf("the killed run ended with %v, want training_complete of attempt 2", m)
	}
	if tmp := relTemps(srv.reports); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	relServesOn(t, srv2, relFollow(t, srv2.addr, ""))
}
