package runlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The object store holds what every agent and replica must be able to read
// whatever machine it runs on: the dataset versions jobs were started on,
// by content (DatasetBlob), and each run's reports (ReportBlob).

// DatasetBlob names the object holding a dataset version.
func DatasetBlob(hash string) string { return "datasets/" + hash }

// PutBlobOnce stores b as object name unless an object of that name exists
// already (a name that says its content, such as DatasetBlob's, never
// needs writing twice).
func (l *Log) PutBlobOnce(ctx context.Context, name string, b []byte) error {
	if _, err := l.blobs.GetInfo(ctx, name); err == nil {
		return nil
	}
	if _, err := l.blobs.Put(ctx, jetstream.ObjectMeta{Name: name}, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("runlog: storing %s: %w", name, err)
	}
	return nil
}

// PutBlob stores the file at path as object name, replacing it.
func (l *Log) PutBlob(ctx context.Context, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := l.blobs.Put(ctx, jetstream.ObjectMeta{Name: name}, f); err != nil {
		return fmt.Errorf("runlog: storing %s: %w", name, err)
	}
	return nil
}

// ErrNoBlob: the object store has no object of that name.
var ErrNoBlob = errors.New("no such object")

// GetBlob writes object name to w.
func (l *Log) GetBlob(ctx context.Context, name string, w io.Writer) error {
	r, err := l.blobs.Get(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("%w %q", ErrNoBlob, name)
	}
	if err != nil {
		return fmt.Errorf("runlog: reading %s: %w", name, err)
	}
	defer r.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("runlog: reading %s: %w", name, err)
	}
	return nil
}

// FetchBlob writes object name into the file path, atomically (a
// temporary file, then a rename), creating its folder.
func (l *Log) FetchBlob(ctx context.Context, name, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := l.GetBlob(ctx, name, tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ReportBlob names the object holding file rel (slash-separated) of run
// id's reports.
func ReportBlob(id, rel string) string { return "reports/" + id + "/" + rel }

// Blob is an object's name and size.
type Blob struct {
	Name  string `json:"name"`
	Bytes uint64 `json:"bytes"`
}

// ListBlobs lists the objects whose name starts with prefix, the prefix
// cut off their names.
func (l *Log) ListBlobs(ctx context.Context, prefix string) ([]Blob, error) {
	infos, err := l.blobs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runlog: listing objects: %w", err)
	}
	var out []Blob
	for _, i := range infos {
		if name, ok := strings.CutPrefix(i.Name, prefix); ok && !i.Deleted {
			out = append(out, Blob{Name: name, Bytes: i.Size})
		}
	}
	slices.SortFunc(out, func(a, b Blob) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// chartSubject carries chart_update broadcasts between replicas: core
// NATS, live only, as the hub sends them.
const chartSubject = "kairo.ctl.chart"

// PublishChart sends msg to every replica's plain /ws clients.
func (l *Log) PublishChart(msg []byte) error { return l.nc.Publish(chartSubject, msg) }

// FollowCharts calls fn with every chart broadcast until ctx is done.
func (l *Log) FollowCharts(ctx context.Context, fn func(msg []byte)) error {
	sub, err := l.nc.Subscribe(chartSubject, func(m *nats.Msg) { fn(m.Data) })
	if err != nil {
		return err
	}
	<-ctx.Done()
	return sub.Unsubscribe()
}

// DeleteBlobs deletes the objects whose name starts with prefix.
func (l *Log) DeleteBlobs(ctx context.Context, prefix string) error {
	blobs, err := l.ListBlobs(ctx, prefix)
	if err != nil {
		return err
	}
	for _, b := range blobs {
		if err := l.blobs.Delete(ctx, prefix+b.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("runlog: deleting %s: %w", prefix+b.Name, err)
		}
	}
	return nil
}
