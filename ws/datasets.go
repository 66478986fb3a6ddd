package ws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kairoscope/kairoscope/datasets"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// chartBroadcaster sends one message to /ws clients live: what an append
// to a dataset tells charts (chart_update). The handlers call it from the
// Store's commit callback, so messages go out in commit order.
//
// Contract, for any hub implementing it:
//   - msg is one JSON object; the implementation may not keep it after the
//     call returns (copy it).
//   - It reaches every client connected to /ws that follows all runs (no
//     ?run=) when the hub handles it, and no other client.
//   - It is live only: never replayed to a client that joins later, and
//     not part of any run (sent without run_id and seq). A client that was
//     away catches up from the store with GET /api/datasets/{name}?since=;
//     previous_hash in chart_update tells it when it must.
//   - Two calls reach each client in call order; the call never blocks on
//     a client (a slow one is dropped, as for run messages).
//
// logCharts implements it (server.go): through NATS, every replica's hub.
type chartBroadcaster interface {
	Broadcast(msg []byte)
}

// datasetPinner gives a job the exact version of its dataset, kept until
// release (*datasets.Store). The run registry and the prediction pipeline
// pin when they accept a job, so that what is appended later does not
// change what a queued job reads.
type datasetPinner interface {
	Pin(name string) (v datasets.Version, release func(), err error)
}

var _ datasetPinner = (*datasets.Store)(nil)

// specData is the worker's view of a pinned version.
func specData(v datasets.Version) *worker.Data {
	return &worker.Data{Name: v.Name, Hash: v.Hash, Path: v.Path}
}

// badDataset says whether err, from a pin, is the client's: a dataset that
// does not exist, is misnamed or does not load (HTTP 400).
func badDataset(err error) bool {
	return errors.Is(err, datasets.ErrNotFound) || errors.Is(err, datasets.ErrBadName) || errors.Is(err, datasets.ErrBroken)
}

// uploadFormSlack is what a multipart form may add to a file's bytes
// (boundaries, headers, the name field) under the body limit.
const uploadFormSlack = 64 << 10

// listDatasets is GET /api/datasets: every dataset, those that do not load
// with their error.
func (s *Server) listDatasets(w http.ResponseWriter, r *http.Request) {
	ds, err := s.datasets.List()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ds)
}

// uploadDataset is POST /api/datasets: a CSV body with ?name=NAME, or a
// multipart form (the dashboard's) with fields name, replace and file.
// Without a name field the file's name (NAME.csv) names the dataset. An
// existing name needs replace=true (409 otherwise).
func (s *Server) uploadDataset(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name, replace := q.Get("name"), isTrue(q.Get("replace"))
	r.Body = http.MaxBytesReader(w, r.Body, s.datasets.MaxBytes()+uploadFormSlack)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		if name == "" {
			writeError(w, http.StatusBadRequest, "name the dataset: POST /api/datasets?name=NAME with the CSV file as the body, or a multipart form with the fields name and file")
			return
		}
		s.putDatasetFrom(w, name, r.Body, replace)
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading the form: "+err.Error())
		return
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			writeError(w, http.StatusBadRequest, "the form has no file field: send the CSV file as the field \"file\"")
			return
		} else if err != nil {
			s.datasetError(w, fmt.Errorf("reading the form: %w", err))
			return
		}
		switch part.FormName() {
		case "name", "replace":
			v, _ := io.ReadAll(io.LimitReader(part, 256))
			if part.FormName() == "replace" {
				replace = isTrue(strings.TrimSpace(string(v)))
			} else if n := strings.TrimSpace(string(v)); n != "" {
				name = n
			}
		case "file":
			if name == "" {
				name = strings.TrimSuffix(filepath.Base(part.FileName()), ".csv")
			}
			s.putDatasetFrom(w, name, part, replace)
			return
		}
		part.Close()
	}
}

// putDataset is PUT /api/datasets/{name}: a CSV body that creates or
// replaces the dataset.
func (s *Server) putDataset(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.datasets.MaxBytes()+1)
	s.putDatasetFrom(w, r.PathValue("name"), r.Body, true)
}

func (s *Server) putDatasetFrom(w http.ResponseWriter, name string, body io.Reader, replace bool) {
	info, created, err := s.datasets.Put(name, body, replace)
	if err != nil {
		s.datasetError(w, err)
		return
	}
	s.log.Info().Str("dataset", name).Bool("created", created).Int("rows", info.Rows).Str("hash", info.Hash).Msg("dataset stored")
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/api/datasets/"+name)
	}
	writeJSON(w, status, info)
}

// deleteDataset is DELETE /api/datasets/{name}: 204, or 409 while a queued
// or running job uses it.
func (s *Server) deleteDataset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	// The records, not only this replica's pins: a job queued before a
	// restart, or through another replica, counts.
	if ids := s.inUse(name); len(ids) > 0 && !datasets.IsEmbedded(name) {
		writeError(w, http.StatusConflict, fmt.Sprintf("dataset %q is used by %d queued or running jobs (%s): cancel them or wait for their end",
			name, len(ids), strings.Join(ids, ", ")))
		return
	}
	if err := s.datasets.Delete(name); err != nil {
		s.datasetError(w, err)
		return
	}
	s.log.Info().Str("dataset", name).Msg("dataset deleted")
	w.WriteHeader(http.StatusNoContent)
}

// getDataset is GET /api/datasets/{name}: the file as CSV (as stored, with
// its hash as ETag), or ?format=json for its rows as JSON; ?since=DATE
// keeps only the rows dated after DATE. Every answer says the version in
// X-Dataset-Hash.
func (s *Server) getDataset(w http.ResponseWriter, r *http.Request) {
	name, q := r.PathValue("name"), r.URL.Query()
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since must be a date YYYY-MM-DD, got %q", v))
			return
		}
		since = t
	}
	switch q.Get("format") {
	case "json":
		series, err := s.datasets.Rows(name, since)
		if err != nil {
			s.datasetError(w, err)
			return
		}
		w.Header().Set("X-Dataset-Hash", series.Hash)
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w) // compact: thousands of rows
		enc.SetEscapeHTML(false)
		enc.Encode(series)
	case "", "csv":
		var info datasets.Info
		var b []byte
		var err error
		if since.IsZero() {
			info, b, err = s.datasets.Read(name)
		} else {
			info, b, err = s.datasets.CSVSince(name, since)
		}
		if err != nil {
			s.datasetError(w, err)
			return
		}
		w.Header().Set("X-Dataset-Hash", info.Hash)
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		var mod time.Time
		if since.IsZero() {
			w.Header().Set("ETag", strconv.Quote(info.Hash))
			if info.Modified != nil {
				mod = *info.Modified
			}
		}
		http.ServeContent(w, r, name+".csv", mod, bytes.NewReader(b))
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("format must be csv or json, got %q", q.Get("format")))
	}
}

// AppendResult is what POST /api/datasets/{name}/rows answers.
type AppendResult struct {
	Dataset      string        `json:"dataset"`
	Appended     int           `json:"appended"`      // rows appended
	PreviousHash string        `json:"previous_hash"` // the version appended to
	Info         datasets.Info `json:"info"`          // the dataset now: rows, last, hash, ...
}

// appendRows is POST /api/datasets/{name}/rows: CSV rows, or JSON
// (Content-Type application/json, or ?format=json), appended atomically
// after the last date. Every append is broadcast on /ws as chart_update.
func (s *Server) appendRows(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	format := datasets.FormatCSV
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch f := r.URL.Query().Get("format"); {
	case f == "json" || f == "" && (mt == "application/json" || strings.HasSuffix(mt, "+json")):
		format = datasets.FormatJSON
	case f != "" && f != "csv":
		writeError(w, http.StatusBadRequest, fmt.Sprintf("format must be csv or json, got %q", f))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.datasets.MaxBytes()+1)
	a, err := s.datasets.Append(name, r.Body, format, func(a datasets.Appended) {
		for _, msg := range chartUpdates(a) {
			s.charts.Broadcast(msg)
		}
	})
	if err != nil {
		s.datasetError(w, err)
		return
	}
	s.log.Info().Str("dataset", name).Int("appended", len(a.Rows)).Int("rows", a.Info.Rows).Str("hash", a.Info.Hash).Msg("rows appended")
	writeJSON(w, http.StatusOK, AppendResult{Dataset: name, Appended: len(a.Rows), PreviousHash: a.PreviousHash, Info: a.Info})
}

// chartUpdates is an append as chart_update messages, MaxChartRows rows
// each.
func chartUpdates(a datasets.Appended) [][]byte {
	parts := (len(a.Rows) + schema.MaxChartRows - 1) / schema.MaxChartRows
	out := make([][]byte, 0, parts)
	for k := range parts {
		msg := schema.ChartUpdate{Type: schema.TypeChartUpdate, Dataset: a.Info.Name, Target: a.Info.Target, OHLCV: a.Info.OHLCV,
			Columns: dateFirst(a.Info.Columns), Rows: a.Rows[k*schema.MaxChartRows : min(len(a.Rows), (k+1)*schema.MaxChartRows)],
			Part: k + 1, Parts: parts, Appended: len(a.Rows), TotalRows: a.Info.Rows, Last: a.Info.Last,
			Hash: a.Info.Hash, PreviousHash: a.PreviousHash}
		b, err := json.Marshal(msg)
		if err != nil {
			continue // rows the Store made always marshal
		}
		out = append(out, b)
	}
	return out
}

// dateFirst is the columns as a ChartRow lists them: the date, then the
// others in file order.
func dateFirst(cols []string) []string {
	out := []string{"date"}
	for _, c := range cols {
		if c != "date" {
			out = append(out, c)
		}
	}
	return out
}

// datasetErrorBody is the JSON of a refused upload or append: the message,
// and where and what when the data itself is wrong.
type datasetErrorBody struct {
	Error string `json:"error"`
	*datasets.Problem
}

// datasetError answers err from the Store with its status.
func (s *Server) datasetError(w http.ResponseWriter, err error) {
	var ie *datasets.InvalidError
	var mbe *http.MaxBytesError
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &ie):
		writeJSON(w, http.StatusBadRequest, datasetErrorBody{Error: err.Error(), Problem: &ie.Problem})
		return
	case errors.As(err, &mbe):
		err = fmt.Errorf("%w: a dataset file may have at most %d bytes (--max-dataset-bytes)", datasets.ErrTooLarge, s.datasets.MaxBytes())
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, datasets.ErrTooLarge):
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, datasets.ErrBadName):
		status = http.StatusBadRequest
	case errors.Is(err, datasets.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, datasets.ErrReadOnly):
		status = http.StatusForbidden
	case errors.Is(err, datasets.ErrExists), errors.Is(err, datasets.ErrInUse), errors.Is(err, datasets.ErrBroken):
		status = http.StatusConflict
	case errors.Is(err, datasets.ErrNoSpace):
		status = http.StatusInsufficientStorage
	case errors.Is(err, multipart.ErrMessageTooLarge):
		status = http.StatusRequestEntityTooLarge
	}
	if status == http.StatusInternalServerError {
		s.log.Error().Err(err).Msg("dataset request failed")
	}
	writeError(w, status, err.Error())
}

// isTrue reads a form or query flag: true, 1, on or yes.
func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "true", "1", "on", "yes":
		return true
	}
	return false
}
