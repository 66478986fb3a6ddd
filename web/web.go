package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// Path is where the dashboard is served: the page at Path (and Path + "/"),
// its assets below it.
const Path = "/dashboard"

//go:embed static
var embedded embed.FS

// Assets returns the dashboard's files, rooted at web/static: the page's
// own and, under vendor/, uPlot's.
func Assets() fs.FS {
	sub, err := fs.Sub(embedded, "static")
	if err != nil {
		panic(err) // "static" is a valid path: cannot happen
	}
	return sub
}

// contentSecurityPolicy keeps the page to its own origin: its own scripts,
// styles and images, and fetch and WebSocket calls back to the server that
// served it. uPlot sets element styles from script, which style-src governs
// only for markup, so no 'unsafe-inline' is needed.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string // strong, from the content: the files change only with the binary
}

var assets = sync.OnceValue(func() map[string]asset {
	m := map[string]asset{}
	fsys := Assets()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		m[p] = asset{body: b, contentType: ct, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`}
		return nil
	})
	if err != nil {
		panic(err) // an embedded FS cannot fail to read
	}
	return m
})

// Handler serves the dashboard for GET and HEAD requests under Path: the
// page (index.html) at Path and Path + "/", and each asset at Path + "/" +
// its name in static. Anything else under Path, directories included, is
// 404. Responses carry a content ETag and "Cache-Control: no-cache", so a
// browser revalidates and never runs the assets of an older binary.
//
// The assets are the same for everyone and hold no data, so the server may
// serve them without its token; the page passes the token given in its own
// URL (?token=) to every API and WebSocket call.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, Path)
		if !ok || name != "" && name[0] != '/' {
			http.NotFound(w, r)
			return
		}
		name = strings.TrimPrefix(name, "/")
		if name == "" {
			name = "index.html"
		}
		a, ok := assets()[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Etag", a.etag)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Referrer-Policy", "no-referrer") // the page's URL may hold the token
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}
