package worker

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// With OrphanAfter, the Runner's beats keep a worker alive for longer than
// OrphanAfter, however long it writes nothing.
func TestBeatsKeepAWorkerAlive(t *testing.T) {
	r := runner("slow", "")
	r.OrphanAfter = 200 * time.Millisecond // the worker is silent for 1 s
	msgs, err := collect(t, r, context.Background(), DeviceCPU)
	if err != nil || len(msgs) != 2 || msgs[1]["type"] != "training_complete" {
		t.Fatalf("%v %v", msgs, err)
	}
}

// Beats leave stdin alone: it still ends after the spec, so a worker that
// reads it to its end goes on.
func TestBeatsLeaveStdinEndingAfterTheSpec(t *testing.T) {
	r := runner("toeof", "")
	r.OrphanAfter = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msgs, err := collect(t, r, ctx, DeviceCPU)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%v %v", msgs, err)
	}
}

// startOrphan starts the fake worker in mode with a spec asking for beats
// every orphanAfter/4, and returns the beats pipe's end the test holds, as
// a frozen server's would be: open, silent.
func startOrphan(t *testing.T, mode string, orphanAfter time.Duration) (*exec.Cmd, *os.File) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "FAKE_WORKER="+mode)
	cmd.Stdin = strings.NewReader(`{"run":{"dataset":"bike"},"orphan_after_ms":` + strconv.FormatInt(orphanAfter.Milliseconds(), 10) + "}")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.ExtraFiles = []*os.File{pr}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	t.Cleanup(func() { cmd.Process.Kill(); pw.Close() })
	return cmd, pw
}

func waitOrphaned(t *testing.T, cmd *exec.Cmd, want string) time.Duration {
	t.Helper()
	start := time.Now()
	err := cmd.Wait()
	took := time.Since(start)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != ExitOrphaned {
		t.Fatalf("the worker ended with %v, want exit status %d", err, ExitOrphaned)
	}
	if s := cmd.Stderr.(*strings.Builder).String(); !strings.Contains(s, want) {
		t.Errorf("its log %q does not say %q", s, want)
	}
	return took
}

// A worker that hears no beat for orphan_after_ms stops itself with
// ExitOrphaned, however busy it is.
func TestAWorkerStopsWithoutBeats(t *testing.T) {
	cmd, _ := startOrphan(t, "hang", 300*time.Millisecond)
	if took := waitOrphaned(t, cmd, "no beat from the server for 300ms"); took < 250*time.Millisecond || took > 10*time.Second {
		t.Errorf("it stopped after %v, want about 300 ms", took)
	}
}

// A beat restarts the clock; the server's end of the pipe closing stops
// the worker at once.
func TestAWorkerStopsWhenItsBeatsPipeCloses(t *testing.T) {
	cmd, pw := startOrphan(t, "hang", 10*time.Second)
	time.Sleep(100 * time.Millisecond)
	pw.WriteString("\n")
	pw.Close()
	if took := waitOrphaned(t, cmd, "the server closed its end of the beats pipe"); took > 5*time.Second {
		t.Errorf("it stopped %v after the pipe closed, want at once (its limit was 10 s)", took)
	}
}

// Run reports a worker that stopped itself as an *ExitError matching
// ErrOrphaned, so that its agent hands the job back instead of failing it.
func TestOrphanedIsAnExitError(t *testing.T) {
	r := runner("orphan", "")
	_, err := collect(t, r, context.Background(), DeviceCPU)
	var ee *ExitError
	if !errors.Is(err, ErrOrphaned) || !errors.As(err, &ee) || ee.Status != ExitOrphaned {
		t.Fatalf("err %v, want an *ExitError matching ErrOrphaned", err)
	}
}

func TestReadSpecRejectsANegativeOrphanAfter(t *testing.T) {
	if _, err := ReadSpec(strings.NewReader(`{"run":{"dataset":"bike"},"orphan_after_ms":-1}`)); err == nil {
		t.Error("accepted")
	}
}
