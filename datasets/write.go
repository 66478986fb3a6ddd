package datasets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// A new version of a file is written under a temporary name in the folder
// it will live in (so the rename cannot cross file systems), synced, then
// renamed over the old name, and the folder synced so the rename itself
// survives a power cut. The temporary name starts with a dot and ends in
// .part: never a dataset, and removed by Open after a crash.

// createTemp starts a temporary file in dir.
func createTemp(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, tmpPrefix+"*.part")
	if err != nil {
		return nil, diskError("creating a temporary file", err)
	}
	return f, nil
}

// finish syncs and closes f, a temporary file, removing it on failure.
func finish(f *os.File) error {
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return diskError("writing "+filepath.Base(f.Name()), err)
	}
	return nil
}

// discard closes and removes f, a temporary file that will not be
// committed.
func discard(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// commit renames tmp, finished, over final and syncs the folder. The
// Options' BeforeCommit hook runs just before the rename.
func (s *Store) commit(tmp, final string) error {
	if s.opt.BeforeCommit != nil {
		s.opt.BeforeCommit(tmp)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return diskError("renaming the new file into place", err)
	}
	return syncDir(filepath.Dir(final))
}

// writeFile writes b to final atomically.
func (s *Store) writeFile(final string, b []byte) error {
	f, err := createTemp(filepath.Dir(final))
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		discard(f)
		return diskError("writing "+filepath.Base(final), err)
	}
	if err := finish(f); err != nil {
		return err
	}
	return s.commit(f.Name(), final)
}

// syncDir makes the names in dir durable: a rename or a removal is only
// on disk once its folder is synced.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return diskError("syncing the datasets folder", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return diskError("syncing the datasets folder", err)
	}
	return nil
}

// removeTemps removes the temporary files a crash left in dir.
func removeTemps(dir string) {
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.HasPrefix(de.Name(), tmpPrefix) && !de.IsDir() {
			os.Remove(filepath.Join(dir, de.Name()))
		}
	}
}

// ErrNoSpace is matched by a write that failed for want of disk space (the
// server answers 507).
var ErrNoSpace = errors.New("no space left for datasets")

// diskError says which step of a write failed; a full disk also matches
// ErrNoSpace.
func diskError(what string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%s: %w: %w", what, ErrNoSpace, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
