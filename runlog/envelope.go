package ws

import (
	"encoding/json"
	"strconv"
)

// Envelope returns msg with the fields "run_id" and "seq" added at the end:
// `{"type":"x",...}` becomes `{"type":"x",...,"run_id":"r","seq":7}`. Every
// original byte before the closing brace is kept, so no field is removed,
// renamed or reordered. msg must be a JSON object (surrounding whitespace is
// allowed); Envelope only checks its outer braces and returns nil when they
// are missing. msg is not modified.
//
// If msg already has a top-level "run_id" or "seq", the result holds the key
// twice; JSON.parse, Python's json and encoding/json all keep the last one,
// which is the hub's.
func Envelope(msg []byte, runID string, seq uint64) []byte {
	body, empty, ok := envelopeBody(msg)
	if !ok {
		return nil
	}
	suffix := envelopeSuffix(runID)
	out := make([]byte, 0, len(body)+len(suffix)+21)
	return appendEnvelope(append(out, body...), empty, suffix, seq)
}

// envelopeBody returns msg up to, not including, its closing brace, and
// whether the object has no fields. ok is false when msg is not braced.
func envelopeBody(msg []byte) (body []byte, empty, ok bool) {
	end := len(msg) - 1
	for end >= 0 && isEnvelopeSpace(msg[end]) {
		end--
	}
	start := 0
	for start < len(msg) && isEnvelopeSpace(msg[start]) {
		start++
	}
	if start >= end || msg[start] != '{' || msg[end] != '}' {
		return nil, false, false
	}
	inner := end - 1
	for inner > start && isEnvelopeSpace(msg[inner]) {
		inner--
	}
	return msg[:end], inner == start, true
}

// envelopeSuffix returns `,"run_id":<quoted runID>,"seq":`, computed once
// per run by the hub.
func envelopeSuffix(runID string) []byte {
	q, _ := json.Marshal(runID) // a string always marshals
	out := make([]byte, 0, len(q)+18)
	out = append(out, `,"run_id":`...)
	out = append(out, q...)
	return append(out, `,"seq":`...)
}

// appendEnvelope appends suffix (without its comma when the object is
// empty), seq and the closing brace to body, in place when body has room.
func appendEnvelope(body []byte, empty bool, suffix []byte, seq uint64) []byte {
	if empty {
		suffix = suffix[1:]
	}
	body = append(body, suffix...)
	body = strconv.AppendUint(body, seq, 10)
	return append(body, '}')
}

func isEnvelopeSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r'
}
