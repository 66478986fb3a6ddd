package runlog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publishTry bounds one try of a publish.
const publishTry = 5 * time.Second

// Writer appends one attempt's messages to a run's log. Each message gets
// the run's next seq and is published with the stream sequence of the
// run's last message as its expected predecessor, so two writers can never
// interleave: after a newer attempt has written, an older one's appends fail
// with ErrFenced. Not safe for concurrent use.
type Writer struct {
	l       *Log
	id      string
	subject string
	attempt int
	seq     uint64 // the run's last seq
	last    uint64 // the stream sequence of the run's last message, 0 if none
}

// Writer opens run id's log for attempt. It fails with ErrFenced when a
// newer attempt has written already, and ErrEnded when the log ends with a
// terminal message.
func (l *Log) Writer(ctx context.Context, id string, attempt int) (*Writer, error) {
	w := &Writer{l: l, id: id, subject: eventSubject(id), attempt: attempt}
	if err := w.rebase(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// Seq is the seq of the last message appended or found.
func (w *Writer) Seq() uint64 { return w.seq }

// rebase reads the run's last message and continues after it, unless a
// newer attempt wrote it or it ends the run.
func (w *Writer) rebase(ctx context.Context) error {
	m, err := w.l.events.GetLastMsgForSubject(ctx, w.subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		w.seq, w.last = 0, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("runlog: reading the end of %s's log: %w", w.id, err)
	}
	attempt, _ := strconv.Atoi(m.Header.Get(hdrAttempt))
	if attempt > w.attempt {
		return fmt.Errorf("%w (attempt %d wrote after attempt %d)", ErrFenced, attempt, w.attempt)
	}
	if m.Header.Get(hdrTerminal) != "" {
		return fmt.Errorf("%w: %s's log is complete", ErrEnded, w.id)
	}
	seq, err := strconv.ParseUint(m.Header.Get(hdrSeq), 10, 64)
	if err != nil {
		return fmt.Errorf("runlog: %s's last message has no %s header", w.id, hdrSeq)
	}
	w.seq, w.last = seq, m.Sequence
	return nil
}

// Append adds body, a JSON object, as the run's next message, enveloped
// with run_id, seq and attempt. terminal marks the run's last message. A
// publish whose acknowledgement is lost is retried; on a sequence conflict
// it reads the log's end: its own message there means the retry landed, an
// older attempt's late message is stepped over, a newer attempt's means
// ErrFenced.
func (w *Writer) Append(ctx context.Context, body []byte, terminal bool) error {
	for try := 0; ; try++ {
		seq := w.seq + 1
		payload := Envelope(body, w.id, seq, w.attempt)
		if payload == nil {
			return fmt.Errorf("runlog: %s: a message that is not a JSON object: %.80q", w.id, body)
		}
		msgID := w.id + ".a" + strconv.Itoa(w.attempt) + ".s" + strconv.FormatUint(seq, 10)
		m := nats.NewMsg(w.subject)
		m.Data = payload
		m.Header.Set(hdrSeq, strconv.FormatUint(seq, 10))
		m.Header.Set(hdrAttempt, strconv.Itoa(w.attempt))
		if terminal {
			m.Header.Set(hdrTerminal, "1")
		}
		// Each try has its own deadline: a publish in flight when a node
		// fails may never be answered, and the retry (same ID) is safe.
		tryCtx, cancel := context.WithTimeout(ctx, publishTry)
		ack, err := w.l.js.PublishMsg(tryCtx, m, jetstream.WithMsgID(msgID), jetstream.WithExpectLastSequencePerSubject(w.last))
		cancel()
		if err == nil {
			w.seq, w.last = seq, ack.Sequence
			return nil
		}
		if ctx.Err() != nil || try >= 8 {
			return fmt.Errorf("runlog: appending to %s: %w", w.id, err)
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			last, gerr := w.l.events.GetLastMsgForSubject(ctx, w.subject)
			if gerr == nil && last.Header.Get(jetstream.MsgIDHeader) == msgID {
				// Our earlier try landed and only its acknowledgement was lost
				// (nats-server 2.10+ answers the retry with 10071).
				w.seq, w.last = seq, last.Sequence
				return nil
			}
			if gerr == nil && last.Header.Get(hdrAttempt) == strconv.Itoa(w.attempt) {
				// Another writer of this very attempt: records allow one.
				return fmt.Errorf("%w (a second writer of attempt %d)", ErrFenced, w.attempt)
			}
			if err := w.rebase(ctx); err != nil {
				return err
			}
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
			errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrConnectionReconnecting) {
			// The server may be restarting or electing a leader: the same
			// message again, same ID, so a landed one is not doubled.
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(try+1) * 250 * time.Millisecond):
			}
			continue
		}
		return fmt.Errorf("runlog: appending to %s: %w", w.id, err)
	}
}
