package hub

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// Message is one message of a stream, as the log holds it.
type Message struct {
	Stream string
	Seq    uint64 // 1, 2, 3, … within the stream
	// Payload is the JSON object sent to clients, already carrying its
	// run_id and seq (runlog.Envelope).
	Payload []byte
	// Terminal marks the stream's last message (training_complete or
	// training_error; a forecast's output or error).
	Terminal bool
}

// kind sorts frames for Subscription.Deltas.
type kind uint8

const (
	kindPlain kind = iota
	kindDelta      // a prediction_delta sent during training
	kindFinal      // a fold's final, calibrated prediction_delta
)

// frame is one message ready for the socket: a whole text frame (textFrame),
// the same bytes for every client.
type frame struct {
	seq      uint64
	data     []byte
	kind     kind
	terminal bool
}

func newFrame(m Message) frame {
	k := kindPlain
	if bytes.HasPrefix(m.Payload, []byte(`{"type":"prediction_delta"`)) {
		k = kindDelta
		if bytes.Contains(m.Payload, []byte(`"final":true`)) {
			k = kindFinal
		}
	}
	return frame{seq: m.Seq, data: textFrame(m.Payload), kind: k, terminal: m.Terminal}
}

// stream is one stream's cached history: frames holds the contiguous seqs
// base, base+1, …; pending holds messages that arrived past a gap. frames
// is never written in place: dropping the oldest reslices and growing may
// move it, so a slice handed to a catching-up client stays valid.
type stream struct {
	id      string
	created uint64 // Hub.created when it appeared: "new since a client joined"
	base    uint64 // seq of frames[0]; the next seq expected when frames is empty
	frames  []frame
	pending map[uint64]frame
	bytes   int64
	// loaded: Load merged the log's history, so base is where the log
	// starts; trimmed: the hub dropped its oldest messages for its limits.
	loaded, trimmed bool
	ended           bool
	endedAt         time.Time
}

// next is the seq the stream expects next.
func (s *stream) next() uint64 { return s.base + uint64(len(s.frames)) }

// last is the seq of the newest kept message, 0 when there is none.
func (s *stream) last() uint64 {
	if len(s.frames) == 0 {
		return 0
	}
	return s.frames[len(s.frames)-1].seq
}

// after returns the kept frames whose seq is above cursor.
func (s *stream) after(cursor uint64) []frame {
	if cursor < s.base {
		return s.frames
	}
	i := cursor + 1 - s.base
	if i >= uint64(len(s.frames)) {
		return nil
	}
	return s.frames[i:]
}

// dropOldest drops the n oldest kept frames and returns their bytes.
func (s *stream) dropOldest(n int) int64 {
	var freed int64
	for _, f := range s.frames[:n] {
		freed += int64(len(f.data))
	}
	s.frames = s.frames[n:]
	s.base += uint64(n)
	s.trimmed = true
	s.bytes -= freed
	return freed
}

// gapNotice is the frame that tells a client the messages from..to of a
// stream are no longer kept (not in memory, not in the log): it gets what
// remains. It is not a stream message and carries no seq.
func gapNotice(stream string, from, to uint64) []byte {
	id, _ := json.Marshal(stream) // a string always marshals
	b := append([]byte(`{"type":"replay_gap","run_id":`), id...)
	b = append(b, `,"missed_from":`...)
	b = strconv.AppendUint(b, from, 10)
	b = append(b, `,"missed_to":`...)
	b = strconv.AppendUint(b, to, 10)
	b = append(b, `,"message":"these messages are no longer kept; what follows is what remains"}`...)
	return textFrame(b)
}
