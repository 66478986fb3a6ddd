package datasets

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kairoscope/kairoscope/engine/dataset"
)

// Put stores body, a CSV file (date,value or OHLCV, as `train --data`
// reads), as dataset name. The file is validated by the loader while it is
// written to a temporary file, so a bad one is refused at its first bad
// line, without reading the rest: an *InvalidError (ErrInvalid) locating
// the problem, with fewer than MinRows rows refused too. A body beyond
// MaxBytes fails with ErrTooLarge. Either way nothing in the folder
// changes.
//
// When name exists, Put replaces it if replace is set and fails with
// ErrExists otherwise; created says which happened. Replacing a dataset
// that jobs use is allowed: they read the version they were started on.
// Embedded datasets are read-only (ErrReadOnly).
func (s *Store) Put(name string, body io.Reader, replace bool) (info Info, created bool, err error) {
	if e, err := s.lookup(name); err != nil {
		return Info{}, false, err
	} else if e != nil {
		return Info{}, false, fmt.Errorf("%w: %q is embedded in the server; upload your data under another name", ErrReadOnly, name)
	}
	file := fileOf(name)
	f, err := createTemp(s.dir)
	if err != nil {
		return Info{}, false, err
	}
	committed := false
	defer func() {
		if !committed {
			discard(f)
		}
	}()
	// The loader reads the body through a tee: what it reads goes to the
	// temporary file and the hash. Read reads to the end when the file is
	// good.
	lim := newLimitReader(body, s.opt.MaxBytes)
	h := sha256.New()
	w := bufio.NewWriterSize(f, 64<<10)
	series, rerr := dataset.Read(io.TeeReader(lim, io.MultiWriter(w, h)), file, dataset.Options{MinRows: MinRows})
	if lim.err != nil {
		return Info{}, false, lim.err
	}
	if err := w.Flush(); err != nil {
		return Info{}, false, diskError("writing "+file, err)
	}
	if rerr != nil {
		return Info{}, false, invalid(rerr)
	}
	if err := finish(f); err != nil {
		committed = true // finish removed it
		return Info{}, false, err
	}
	header, err := fileHeader(f.Name())
	if err != nil {
		return Info{}, false, err
	}
	e := newEntry(name, file, lim.read, hex.EncodeToString(h.Sum(nil)), series, header)

	s.mu.Lock()
	defer s.mu.Unlock()
	final := filepath.Join(s.dir, file)
	_, statErr := os.Stat(final)
	created = errors.Is(statErr, fs.ErrNotExist)
	if !created && !replace {
		return Info{}, false, fmt.Errorf("%w: %q is already a dataset; replace it (PUT /api/datasets/%s, or replace=true)", ErrExists, name, name)
	}
	committed = true // commit renames or removes it
	if err := s.commit(f.Name(), final); err != nil {
		return Info{}, false, err
	}
	s.remember(file, e)
	return s.infoLocked(e), created, nil
}

// remember caches e as what file now holds, as the Store just wrote it.
func (s *Store) remember(file string, e *entry) {
	fi, err := os.Stat(filepath.Join(s.dir, file))
	if err != nil {
		delete(s.files, file)
		return
	}
	e.info.Modified = modified(fi)
	s.files[file] = &fileEntry{fi: fi, entry: e}
}

// fileHeader reads the header of a file the loader accepted.
func fileHeader(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 64<<10)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	if h := readHeader(b[:n]); h != nil {
		return h, nil
	}
	// A header longer than the first read: read it all.
	all, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return readHeader(all), nil
}

// Delete removes dataset name. It fails with ErrInUse while a queued or
// running job uses it (Pin), ErrReadOnly for an embedded dataset and
// ErrNotFound when there is no such file.
func (s *Store) Delete(name string) error {
	if e, err := s.lookup(name); err != nil {
		return err
	} else if e != nil {
		return fmt.Errorf("%w: %q is embedded in the server and cannot be deleted", ErrReadOnly, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.users[name]; n > 0 {
		return fmt.Errorf("%w: %d queued or running job(s) use %q; cancel them or wait for them to end", ErrInUse, n, name)
	}
	file := fileOf(name)
	if err := os.Remove(filepath.Join(s.dir, file)); errors.Is(err, fs.ErrNotExist) {
		return s.notFound(name)
	} else if err != nil {
		return diskError("deleting "+file, err)
	}
	delete(s.files, file)
	return syncDir(s.dir)
}

// limitReader reads at most left bytes of r, then fails with ErrTooLarge.
// err keeps the first error that was not io.EOF: the loader wraps what
// it reads through, so the caller looks here to tell a body it could not
// read from a bad file.
type limitReader struct {
	r         io.Reader
	max, left int64
	read      int64 // bytes passed on
	err       error
}

func newLimitReader(r io.Reader, max int64) *limitReader {
	return &limitReader{r: r, max: max, left: max}
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	if int64(n) > l.left {
		l.err = fmt.Errorf("%w: a dataset file may have at most %d bytes (--max-dataset-bytes)", ErrTooLarge, l.max)
		return 0, l.err
	}
	l.read += int64(n)
	l.left -= int64(n)
	if err != nil && err != io.EOF {
		l.err = fmt.Errorf("reading the upload: %w", err)
		return n, l.err
	}
	return n, err
}
