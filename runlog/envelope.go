package runlog

import (
	"encoding/json"
	"strconv"
)

// Envelope returns msg with the fields "run_id", "seq" and "attempt" added
// at the end: `{"type":"x",...}` becomes
// `{"type":"x",...,"run_id":"r","seq":7,"attempt":1}`. Every original byte
// before the closing brace is kept, so no field is removed, renamed or
// reordered. msg must be a JSON object (surrounding whitespace is allowed);
// Envelope only checks its outer braces and returns nil when they are
// missing. msg is not modified.
//
// If msg already has a top-level "run_id", "seq" or "attempt", the result
// holds the key twice; JSON.parse, Python's json and encoding/json all keep
// the last one, which is the log's.
func Envelope(msg []byte, runID string, seq uint64, attempt int) []byte {
	body, empty, ok := envelopeBody(msg)
	if !ok {
		return nil
	}
	id, _ := json.Marshal(runID) // a string always marshals
	out := make([]byte, 0, len(body)+len(id)+48)
	out = append(out, body...)
	if !empty {
		out = append(out, ',')
	}
	out = append(out, `"run_id":`...)
	out = append(out, id...)
	out = append(out, `,"seq":`...)
	out = strconv.AppendUint(out, seq, 10)
	out = append(out, `,"attempt":`...)
	out = strconv.AppendInt(out, int64(attempt), 10)
	return append(out, '}')
}

// envelopeBody returns msg up to, not including, its closing brace, and
// whether the object has no fields. ok is false when msg is not braced.
func envelopeBody(msg []byte) (body []byte, empty, ok bool) {
	end := len(msg) - 1
	for end >= 0 && isSpace(msg[end]) {
		end--
	}
	start := 0
	for start < len(msg) && isSpace(msg[start]) {
		start++
	}
	if start >= end || msg[start] != '{' || msg[end] != '}' {
		return nil, false, false
	}
	inner := end - 1
	for inner > start && isSpace(msg[inner]) {
		inner--
	}
	return msg[:end], inner == start, true
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }
