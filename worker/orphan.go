package worker

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// ExitOrphaned is the exit status of a worker that stopped itself because
// the process that started it went quiet (see Spec.OrphanAfterMS). It is
// sysexits' EX_TEMPFAIL: the job may well succeed when tried again.
const ExitOrphaned = 75

// ErrOrphaned is matched by the error of a worker that exited with
// ExitOrphaned: its server (or agent) was frozen, hung or gone for longer
// than Runner.OrphanAfter, so it stopped rather than train on for nobody.
var ErrOrphaned = errors.New("the worker stopped itself: no beat from its server within the lease")

// BeatFD is the file descriptor a worker reads its server's beats on.
const BeatFD = 3

// Open reads the job spec from a worker's stdin as ReadSpec does and, when
// the spec sets OrphanAfterMS, watches descriptor BeatFD for the server's
// beats (Runner.OrphanAfter): when none comes for that long, or the
// server's end of that pipe closes, orphaned is called once, from another
// goroutine, with what happened. Workers exit there with ExitOrphaned.
func Open(stdin io.Reader, orphaned func(why string)) (Spec, error) {
	s, err := ReadSpec(stdin)
	if err != nil || s.OrphanAfterMS <= 0 {
		return s, err
	}
	watchBeats(os.NewFile(BeatFD, "beats"), time.Duration(s.OrphanAfterMS)*time.Millisecond, orphaned)
	return s, nil
}

// ExitOrphanedWith returns what a worker passes Open: log says why, then the
// process exits with ExitOrphaned (the device's memory goes with it).
func ExitOrphanedWith(log zerolog.Logger) func(why string) {
	return func(why string) {
		log.Error().Str("why", why).Msg("worker: stopping; its server will hand the job to another attempt")
		os.Exit(ExitOrphaned)
	}
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
					orphaned(fmt.Sprintf("the server closed its end of the beats pipe (%v)", err))
					return
				}
				t.Reset(after)
			case <-t.C:
				orphaned(fmt.Sprintf("no beat from the server for %v (it is frozen, hung or cut off)", after))
				return
			}
		}
	}()
}

// feedBeats writes a newline on w every every until done closes or a write
// fails (the worker exited), and closes w.
func feedBeats(w io.WriteCloser, every time.Duration, done <-chan struct{}) {
	defer w.Close()
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
