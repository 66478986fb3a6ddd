package datasets

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kairoscope/kairoscope/engine/dataset"
)

// DefaultMaxBytes is the largest dataset file by default: half a million
// daily OHLCV rows.
const DefaultMaxBytes = 32 << 20

// Options configure a Store. The zero value takes the defaults.
type Options struct {
	// MaxBytes is the largest file an upload or an append may leave
	// (default DefaultMaxBytes); beyond it they fail with ErrTooLarge and
	// change nothing. A bigger file put in the folder by hand is listed
	// with an error.
	MaxBytes int64

	// BeforeCommit, when not nil, is called with the temporary file's path
	// after a new version of a dataset has been written and synced, and
	// before it is renamed over the old one: a test hook (the kill test
	// pauses there). It runs with the Store locked.
	BeforeCommit func(tmp string)
}

// Store is the datasets the server serves: the embedded ones, read-only,
// then every CSV file of a folder, each a dataset named after its file
// (NAME.csv). It reads the folder again on every call (a stat per file,
// a read only of files whose size, modification time or inode changed), so
// files that someone adds, replaces or removes by hand while the server
// runs are seen at once, without a watcher. Files whose name starts with a
// dot are not datasets: the Store's temporary files and its versions
// folder are named so.
//
// A Store is safe for concurrent use. Writes (Put, Append, Delete) and pins
// are serialised; a write replaces the file atomically, so readers, jobs
// and a crash see the old file or the new one.
type Store struct {
	dir string // absolute; "" for Embedded
	opt Options

	mu    sync.Mutex
	files map[string]*fileEntry // by file name, as last read
	pins  map[string]int        // versions by hash: jobs holding each
	users map[string]int        // datasets by name: jobs using each
}

// fileEntry is a file of the folder as the Store last read it.
type fileEntry struct {
	fi os.FileInfo // stat before the read: a change since means read again
	*entry
}

// versionsDir holds the content-addressed copies that pinned jobs read,
// VERSIONS/<hash>.csv; tmpPrefix starts every temporary file's name.
const (
	versionsDir = ".versions"
	tmpPrefix   = ".tmp-"
)

// Open returns the Store of folder dir, creating it (and its versions
// folder) when missing, and removing the temporary files a crash may have
// left: they never held a committed dataset. It does not remove versions:
// call Prune once the jobs that survive a restart (none today) are pinned.
func Open(dir string, opt Options) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("datasets folder %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, versionsDir), 0o755); err != nil {
		return nil, fmt.Errorf("datasets folder: %w", err)
	}
	for _, d := range []string{abs, filepath.Join(abs, versionsDir)} {
		removeTemps(d)
	}
	s := Embedded()
	s.dir, s.opt = abs, opt
	if s.opt.MaxBytes <= 0 {
		s.opt.MaxBytes = DefaultMaxBytes
	}
	return s, nil
}

// Embedded returns a Store of the embedded datasets alone: no folder, every
// write refused with ErrReadOnly.
func Embedded() *Store {
	return &Store{opt: Options{MaxBytes: DefaultMaxBytes}, files: map[string]*fileEntry{}, pins: map[string]int{}, users: map[string]int{}}
}

// Dir is the folder, "" for Embedded.
func (s *Store) Dir() string { return s.dir }

// MaxBytes is the largest dataset file a write may leave.
func (s *Store) MaxBytes() int64 { return s.opt.MaxBytes }

// List describes every dataset: the embedded ones by name, then the files
// of the folder by name, those that do not load included. It fails only
// when the folder cannot be read.
func (s *Store) List() ([]Info, error) {
	var out []Info
	for _, n := range Names() {
		out = append(out, embedded()[n].info)
	}
	if s.dir == "" {
		return out, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.scanLocked(); err != nil {
		return out, err
	}
	names := make([]string, 0, len(s.files))
	for f := range s.files {
		names = append(names, f)
	}
	slices.Sort(names)
	for _, f := range names {
		out = append(out, s.infoLocked(s.files[f].entry))
	}
	return out, nil
}

// Get describes dataset name: ErrBadName, ErrNotFound, or its Info (with
// Error when its file does not load).
func (s *Store) Get(name string) (Info, error) {
	if e, err := s.lookup(name); err != nil {
		return Info{}, err
	} else if e != nil {
		return e.info, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, _, err := s.readLocked(name)
	if err != nil {
		return Info{}, err
	}
	return s.infoLocked(e), nil
}

// lookup checks name and returns its embedded entry, or nil for a name the
// folder may hold.
func (s *Store) lookup(name string) (*entry, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if e := embedded()[name]; e != nil {
		return e, nil
	}
	if s.dir == "" {
		return nil, s.notFound(name)
	}
	return nil, nil
}

func (s *Store) notFound(name string) error {
	return fmt.Errorf("%w %q: see GET /api/datasets for the list", ErrNotFound, name)
}

func (s *Store) infoLocked(e *entry) Info {
	i := e.info
	i.Jobs = s.users[i.Name]
	return i
}

// fileOf is the file that holds dataset name.
func fileOf(name string) string { return name + ".csv" }

// readLocked reads dataset name's file from the folder and returns its
// bytes and their entry, refreshing the cache: ErrNotFound when there is
// no such file.
func (s *Store) readLocked(name string) (*entry, []byte, error) {
	file := fileOf(name)
	path := filepath.Join(s.dir, file)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !fi.Mode().IsRegular() {
		delete(s.files, file)
		return nil, nil, s.notFound(name)
	} else if err != nil {
		return nil, nil, fmt.Errorf("dataset %q: %w", name, err)
	}
	var known *entry
	if c := s.files[file]; c != nil {
		known = c.entry
	}
	b, e, err := s.readFile(file, fi, known)
	if err != nil {
		return nil, nil, err
	}
	s.files[file] = &fileEntry{fi: fi, entry: e}
	return e, b, nil
}

// readFile reads file (whose stat is fi) and describes it, or returns known
// when it holds the bytes known describes. A file beyond MaxBytes is
// described without being read.
func (s *Store) readFile(file string, fi os.FileInfo, known *entry) ([]byte, *entry, error) {
	name := strings.TrimSuffix(file, filepath.Ext(file))
	if fi.Size() > s.opt.MaxBytes {
		e := &entry{info: Info{Name: name, Source: SourceFolder, File: file, Bytes: fi.Size()}}
		e.setError(&dataset.Error{File: file, Err: &problem{kind: ErrTooLarge,
			msg: fmt.Sprintf("the file is %d bytes, more than the %d the server accepts (--max-dataset-bytes)", fi.Size(), s.opt.MaxBytes)}})
		e.info.Modified = modified(fi)
		return nil, e, nil
	}
	f, err := os.Open(filepath.Join(s.dir, file))
	if err != nil {
		return nil, nil, fmt.Errorf("dataset %q: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, s.opt.MaxBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("dataset %q: reading %s: %w", name, file, err)
	}
	if known != nil && known.info.Hash == hashOf(b) {
		return b, known, nil
	}
	e := describe(name, file, b, dataset.Options{MinRows: MinRows})
	e.info.Modified = modified(fi)
	switch {
	case checkName(name) != nil || filepath.Ext(file) != ".csv":
		e.setError(&dataset.Error{File: file, Err: &problem{kind: ErrBadName,
			msg: fmt.Sprintf("the file's name is not NAME.csv with NAME a dataset name (%s): rename it", validName)}})
	case IsEmbedded(name):
		e.setError(&dataset.Error{File: file, Err: &problem{kind: ErrReadOnly,
			msg: fmt.Sprintf("%q is the name of an embedded dataset, which a file cannot replace: rename it", name)}})
	}
	return b, e, nil
}

// scanLocked brings the cache in line with the folder: new and changed
// files are read, vanished ones forgotten.
func (s *Store) scanLocked() error {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("reading the datasets folder: %w", err)
	}
	seen := map[string]bool{}
	for _, de := range des {
		file := de.Name()
		if strings.HasPrefix(file, ".") || !strings.EqualFold(filepath.Ext(file), ".csv") {
			continue
		}
		fi, err := os.Stat(filepath.Join(s.dir, file)) // follows a link, as reading does
		if err != nil || !fi.Mode().IsRegular() {
			continue // removed since ReadDir, or a folder named x.csv
		}
		seen[file] = true
		if c := s.files[file]; c != nil && sameFile(c.fi, fi) {
			continue
		}
		_, e, err := s.readFile(file, fi, nil)
		if err != nil {
			e = &entry{info: Info{Name: strings.TrimSuffix(file, filepath.Ext(file)), Source: SourceFolder, File: file, Bytes: fi.Size()}}
			e.setError(err)
		}
		s.files[file] = &fileEntry{fi: fi, entry: e}
	}
	for f := range s.files {
		if !seen[f] {
			delete(s.files, f)
		}
	}
	return nil
}

// sameFile says whether b is a as it was: the same inode, size and
// modification time. Every write of the Store renames a new inode in.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

func modified(fi os.FileInfo) *time.Time {
	t := fi.ModTime().UTC()
	return &t
}
