package worker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// ExitOrphaned is the exit status of a worker that stopped itself because
// the process that started it went quiet (see Spec.OrphanAfterMS). It is
// sysexits' EX_TEMPFAIL: the job may well succeed when tried again.
const ExitOrphaned = 75

// ErrOrphaned is matched by the error of a worker that exited with
// ExitOrphaned: its server (or agent) was frozen, hung or gone for longer
// than Runner.OrphanAfter, so it stopped rather than train on for nobody.
var ErrOrphaned = errors.New("the worker stopped itself: no beat from its server within the lease")

// Open reads the job spec from a worker's stdin as ReadSpec does and, when
// the spec sets OrphanAfterMS, watches the rest of stdin for the server's
// beats (Runner.OrphanAfter): when none comes for that long, or the server's
// end of the pipe closes, orphaned is called once, from another goroutine,
// with what happened. Workers exit there with ExitOrphaned.
func Open(stdin io.Reader, orphaned func(why string)) (Spec, error) {
	s, rest, err := decodeSpec(stdin)
	if err != nil || s.OrphanAfterMS <= 0 {
		return s, err
	}
	watchBeats(rest, time.Duration(s.OrphanAfterMS)*time.Millisecond, orphaned)
	return s, nil
}

// watchBeats calls orphaned when r yields nothing for after, or ends.
func watchBeats(r io.Reader, after time.Duration, orphaned func(why string)) {
	beats := make(chan error)
	go func() {
		buf := make([]byte, 64)
		for {
			_, err := r.Read(buf)
			beats <- err
			if err != nil {
				return
			}
		}
	}()
	go func() {
		t := time.NewTimer(after)
		for {
			select {
			case err := <-beats:
				if err != nil {
					orphaned(fmt.Sprintf("the server closed the worker's stdin (%v)", err))
					return
				}
				t.Reset(after)
			case <-t.C:
				orphaned(fmt.Sprintf("no beat from the server on stdin for %v (it is frozen, hung or cut off)", after))
				return
			}
		}
	}()
}

// feedBeats writes spec, a newline, then a newline every every until done
// closes or a write fails (the worker exited), and closes w.
func feedBeats(w io.WriteCloser, spec []byte, every time.Duration, done <-chan struct{}) {
	defer w.Close()
	if _, err := w.Write(append(spec, '\n')); err != nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if _, err := w.Write([]byte{'\n'}); err != nil {
				return
			}
		}
	}
}

// decodeSpec is ReadSpec, also returning what follows the spec on r.
func decodeSpec(r io.Reader) (Spec, io.Reader, error) {
	var s Spec
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, nil, fmt.Errorf("worker: reading the job spec: %w", err)
	}
	return s, io.MultiReader(dec.Buffered(), r), s.validate()
}
