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

// startOrphan starts the fake worker in mode with a spec asking for beats
// every orphanAfter/4 and a stdin pipe the test holds, as a frozen server's
// would be: open, silent.
func startOrphan(t *testing.T, mode string, orphanAfter time.Duration) (*exec.Cmd, *os.File) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "FAKE_WORKER="+mode)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = pr
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	t.Cleanup(func() { cmd.Process.Kill(); pw.Close() })
	spec := `{"run":{"dataset":"bike"},"orphan_after_ms":` + strconv.FormatInt(orphanAfter.Milliseconds(), 10) + "}\n"
	if _, err := pw.WriteString(spec); err != nil {
		t.Fatal(err)
	}
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
	if took := waitOrphaned(t, cmd, "no beat from the server on stdin for 300ms"); took < 250*time.Millisecond || took > 10*time.Second {
		t.Errorf("it stopped after %v, want about 300 ms", took)
	}
}

// A beat restarts the clock; the end of stdin (the server's end closed)
// stops the worker at once.
func TestAWorkerStopsWhenItsStdinCloses(t *testing.T) {
	cmd, pw := startOrphan(t, "hang", 10*time.Second)
	time.Sleep(100 * time.Millisecond)
	pw.WriteString("\n")
	pw.Close()
	if took := waitOrphaned(t, cmd, "the server closed the worker's stdin"); took > 5*time.Second {
		t.Errorf("it stopped %v after its stdin closed, want at once (its limit was 10 s)", took)
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
