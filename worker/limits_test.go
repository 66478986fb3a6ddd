package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// limitWorker plays the fake workers of this file's tests.
func limitWorker(mode string) {
	switch mode {
	case "longlog": // a 2 MiB stderr line, then more work
		fmt.Println(`{"type":"training_start"}`)
		os.Stderr.Write(append(bytes.Repeat([]byte("x"), 2<<20), '\n'))
		fmt.Fprintln(os.Stderr, `{"level":"info","message":"after the long line"}`)
		fmt.Println(`{"type":"training_complete"}`)
	case "flood": // 100,000 stderr lines, then the end
		fmt.Println(`{"type":"training_start"}`)
		line := []byte(`{"level":"warn","message":"flood"}` + "\n")
		w := bytes.Repeat(line, 1000)
		for range 100 {
			os.Stderr.Write(w)
		}
		fmt.Println(`{"type":"training_complete"}`)
	case "keepalive": // silent but for keepalives, for longer than the limit
		out := NewOutput(os.Stdout)
		out.Line([]byte(`{"type":"training_start"}`))
		done := make(chan struct{})
		go out.KeepAlive(done, 50*time.Millisecond, func() bool { return true })
		time.Sleep(5 * time.Second)
		close(done)
		out.Line([]byte(`{"type":"training_complete"}`))
	}
}

// syncLog is a zerolog destination the test reads.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// A stderr line of 2 MiB neither blocks the worker nor stops the relay:
// the line is logged cut, and the lines after it are relayed.
func TestLongStderrLine(t *testing.T) {
	var out syncLog
	r := runner("longlog", "")
	r.Log = zerolog.New(&out)
	start := time.Now()
	msgs, err := collect(t, r, context.Background(), DeviceCPU)
	if err != nil || len(msgs) != 2 || time.Since(start) > 10*time.Second {
		t.Fatalf("%v %v after %v", msgs, err, time.Since(start))
	}
	logs := out.String()
	if !strings.Contains(logs, "after the long line") {
		t.Errorf("the relay stopped at the long line:\n%.300s", logs)
	}
	if !strings.Contains(logs, fmt.Sprintf(`"cut_bytes":%d`, 2<<20-maxLogLine)) {
		t.Errorf("the long line was not logged cut:\n%.300s", logs)
	}
	if len(logs) > 2*maxLogLine {
		t.Errorf("%d bytes of log for one long line", len(logs))
	}
}

// A worker flooding stderr finishes its job; the log gets at most the
// limit's lines a second, and says how many it dropped.
func TestStderrFlood(t *testing.T) {
	var out syncLog
	r := runner("flood", "")
	r.Log = zerolog.New(&out)
	r.LogLines = 100
	start := time.Now()
	msgs, err := collect(t, r, context.Background(), DeviceCPU)
	elapsed := time.Since(start)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("%v %v", msgs, err)
	}
	logs := out.String()
	relayed := strings.Count(logs, `"worker log"`)
	if limit := 100 + int(elapsed.Seconds()*100) + 100; relayed > limit {
		t.Errorf("%d lines relayed in %v, want at most %d", relayed, elapsed, limit)
	}
	if !strings.Contains(logs, "worker stderr flood") || !strings.Contains(logs, `"dropped_lines"`) {
		t.Errorf("no flood report in the log")
	}
}

// A worker that writes nothing for MaxSilence is stopped, and the error
// names the limit.
func TestSilentWorkerIsStopped(t *testing.T) {
	r := runner("hang", "")
	r.MaxSilence = 300 * time.Millisecond
	start := time.Now()
	msgs, err := collect(t, r, context.Background(), DeviceCPU)
	var ee *ExitError
	if !errors.Is(err, ErrSilent) || !errors.As(err, &ee) || len(msgs) != 1 || time.Since(start) > 10*time.Second {
		t.Fatalf("%v %v after %v", msgs, err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "no message for 300ms") || !strings.Contains(err.Error(), "--worker-silence") {
		t.Errorf("error %q", err)
	}
}

// Keepalive lines count as output: a job silent but progressing runs on.
func TestKeepAliveIsNotSilence(t *testing.T) {
	r := runner("keepalive", "")
	r.MaxSilence = 2 * time.Second // above the race detector's 1 s sleep at exit
	msgs, err := collect(t, r, context.Background(), DeviceCPU)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("%v %v", msgs, err)
	}
}

// lineReader cuts long lines, keeps short ones whole, and returns a last
// line without newline.
func TestLineReader(t *testing.T) {
	in := "ab\n" + strings.Repeat("y", 10) + "\n\nlast"
	l := newLineReader(strings.NewReader(in), 4)
	type got struct {
		line string
		cut  int64
	}
	var all []got
	for {
		b, cut, err := l.next()
		if err != nil {
			break
		}
		all = append(all, got{string(b), cut})
	}
	want := []got{{"ab", 0}, {"yyyy", 6}, {"", 0}, {"last", 0}}
	if fmt.Sprint(all) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", all, want)
	}
}
