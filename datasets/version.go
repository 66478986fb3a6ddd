package datasets

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kairoscope/kairoscope/engine/dataset"
)

// Version is one exact content of a dataset, what a job reads.
type Version struct {
	Name string // the dataset
	Hash string // SHA-256 of the file's bytes, lower-case hex
	Rows int
	// Path is a file holding exactly these bytes, kept while the version is
	// pinned: VERSIONS/<hash>.csv in the folder. "" for an embedded
	// dataset, which every worker binary holds.
	Path string
}

// Pin returns the current version of dataset name and keeps it readable
// until release is called: later appends, replacements or a delete
// attempt do not touch it, and Delete refuses the dataset (ErrInUse) while
// any pin on it is held. Call release once the job has ended, whatever
// way; calling it again does nothing. A dataset whose file does not load
// fails with ErrBroken.
//
// Pinned versions of the folder are copies named by their hash (two jobs
// on the same bytes share one); the copy is removed when its last pin is
// released, and by Prune.
func (s *Store) Pin(name string) (v Version, release func(), err error) {
	e, err := s.lookup(name)
	if err != nil {
		return Version{}, nil, err
	}
	if e != nil {
		return Version{Name: name, Hash: e.info.Hash, Rows: e.info.Rows}, func() {}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, b, err := s.readLocked(name)
	if err != nil {
		return Version{}, nil, err
	}
	if !e.info.usable() {
		return Version{}, nil, fmt.Errorf("%w: %s (replace the file)", ErrBroken, e.info.Error)
	}
	hash := e.info.Hash
	path := filepath.Join(s.dir, versionsDir, hash+".csv")
	if s.pins[hash] == 0 {
		// A copy left unpinned (before Prune) holds the same bytes: its name
		// is their hash, and it was written atomically.
		if _, err := os.Stat(path); err != nil {
			if err := s.writeFile(path, b); err != nil {
				return Version{}, nil, fmt.Errorf("dataset %q: keeping the version a job reads: %w", name, err)
			}
		}
	}
	s.pins[hash]++
	s.users[name]++
	release = sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.users[name]--; s.users[name] <= 0 {
			delete(s.users, name)
		}
		if s.pins[hash]--; s.pins[hash] <= 0 {
			delete(s.pins, hash)
			os.Remove(path)
		}
	})
	return Version{Name: name, Hash: hash, Rows: e.info.Rows, Path: path}, release, nil
}

// Prune removes every version copy that no pin holds, and temporary files.
// serve calls it at start, since no job outlives the server today; once
// jobs survive a restart, pin theirs first.
func (s *Store) Prune() error {
	if s.dir == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := filepath.Join(s.dir, versionsDir)
	des, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("pruning dataset versions: %w", err)
	}
	for _, de := range des {
		hash := strings.TrimSuffix(de.Name(), ".csv")
		if s.pins[hash] == 0 && !de.IsDir() {
			if err := os.Remove(filepath.Join(dir, de.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("pruning dataset versions: %w", err)
			}
		}
	}
	return syncDir(dir)
}

// LoadVersion reads the data a job was given: the file at path, or when
// path is "" the embedded dataset name, and checks that its bytes hash to
// hash (no check when hash is ""). It returns the series, named name.csv
// as the loader names a file, and the hash of the bytes read. Bytes of
// another version fail with ErrHashMismatch: the job never trains on data
// it was not started on.
func LoadVersion(name, hash, path string) (*dataset.Series, string, error) {
	var b []byte
	if path == "" {
		if !IsEmbedded(name) {
			return nil, "", fmt.Errorf("%w %q: this worker has no such embedded dataset, and the job gives no file", ErrNotFound, name)
		}
		b = embedded()[name].data
	} else {
		var err error
		if b, err = os.ReadFile(path); err != nil {
			return nil, "", fmt.Errorf("dataset %q: reading the version the job was started on: %w", name, err)
		}
	}
	got := hashOf(b)
	if hash != "" && got != hash {
		where := "the embedded dataset"
		if path != "" {
			where = path
		}
		return nil, got, fmt.Errorf("%w: dataset %q: %s has SHA-256 %s, the job was started on %s; start the job again",
			ErrHashMismatch, name, where, got, hash)
	}
	s, err := dataset.Read(bytes.NewReader(b), name+".csv", dataset.Options{})
	return s, got, err
}
