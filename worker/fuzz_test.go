package worker

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/rs/zerolog"
)

// FuzzWorkerStream feeds arbitrary bytes as a worker's stdout and stderr:
// the reader never panics, passes on only whole JSON objects (each a line
// of the input) and stops at the first line that is not one; the log relay
// never panics and returns a bounded explanation.
func FuzzWorkerStream(f *testing.F) {
	for _, s := range []struct{ out, err string }{
		{`{"type":"training_start","use_cv":true,"total_folds":1,"total_epochs":2}` + "\n\n" + `{"type":"training_complete"}` + "\n", ""},
		{"{\"type\":\"epoch_metrics\",\"epoch\":0}\r\n", `{"level":"info","message":"job","kind":"train"}` + "\n"},
		{`Error in initialization, please refer to "https://docs.nvidia.com" for details on: NoDevice` + "\n", "panic: boom\n\ngoroutine 1 [running]:\n"},
		{"{\"a\":1}{\"b\":2}\n", "\x00\xff\n"}, {"{", ""}, {"[1,2]\n", `{"level":"warn","message":"x","error":"y"}`},
		{"{\"type\":\"training_error\",\"error\":\"data.csv:3: bad number\"}", "fatal error: all goroutines are asleep\n"},
	} {
		f.Add([]byte(s.out), []byte(s.err))
	}
	f.Fuzz(func(t *testing.T, stdout, stderr []byte) {
		var msgs [][]byte
		heard := 0
		started, err := readMessages(bytes.NewReader(stdout), func() { heard++ }, func(m []byte) { msgs = append(msgs, m) })
		if started != (len(msgs) > 0) {
			t.Fatalf("started %v with %d messages", started, len(msgs))
		}
		lines := bytes.Count(stdout, []byte("\n")) + 1
		if len(msgs) > lines || heard > lines {
			t.Fatalf("%d messages and %d lines heard from %d lines", len(msgs), heard, lines)
		}
		for _, m := range msgs {
			var obj map[string]json.RawMessage
			if len(m) == 0 || m[0] != '{' || bytes.ContainsAny(m, "\n") || json.Unmarshal(m, &obj) != nil {
				t.Fatalf("passed on %q, not one JSON object", m)
			}
		}
		if err == nil {
			nonEmpty := 0
			for _, l := range bytes.Split(stdout, []byte("\n")) {
				if len(bytes.TrimSuffix(l, []byte("\r"))) > 0 { // a lone \r is an empty line, as bufio.ScanLines reads it
					nonEmpty++
				}
			}
			if len(msgs) != nonEmpty {
				t.Fatalf("no error, but %d messages from %d non-empty lines", len(msgs), nonEmpty)
			}
		}
		why := relayLogs(bytes.NewReader(stderr), zerolog.New(io.Discard), 100)
		if len(why) > maxLogLine+3*1004 {
			t.Fatalf("relayLogs returned %d bytes", len(why))
		}
	})
}
