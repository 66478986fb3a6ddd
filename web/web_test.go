package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// vendored is build.mjs's list of files copied from node_modules into
// static/vendor: keep the two in step.
var vendored = map[string]string{
	"vendor/uplot/uPlot.esm.js":  "uplot/dist/uPlot.esm.js",
	"vendor/uplot/uPlot.min.css": "uplot/dist/uPlot.min.css",
	"vendor/uplot/LICENSE":       "uplot/LICENSE",
}

// TestVendored checks, without Node or the network, that static/vendor
// holds what `make web` puts there: the files of the uPlot version
// package-lock.json pins (byte for byte when node_modules is there), and
// nothing else.
func TestVendored(t *testing.T) {
	const stale = "web/static/vendor is stale: run `make web` and commit it"
	version := lockedVersion(t, "uplot")
	for to, from := range vendored {
		got, err := fs.ReadFile(Assets(), to)
		if err != nil {
			t.Errorf("%s: %v; %s", to, err, stale)
			continue
		}
		if strings.HasSuffix(to, ".js") && !bytes.Contains(got[:min(len(got), 1000)], []byte("(v"+version+")")) {
			t.Errorf("static/%s is not uPlot v%s, the version package-lock.json pins; %s", to, version, stale)
		}
		nm, err := os.ReadFile(filepath.Join("node_modules", from))
		if errors.Is(err, fs.ErrNotExist) {
			continue // no `npm ci` here: the version check above is what can be done
		} else if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, nm) {
			t.Errorf("static/%s differs from node_modules/%s; %s (after npm ci)", to, from, stale)
		}
	}
	err := fs.WalkDir(Assets(), "vendor", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && vendored[p] == "" {
			t.Errorf("static/%s comes from no vendored file; %s", p, stale)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// lockedVersion returns the version package-lock.json pins for a package.
func lockedVersion(t *testing.T, pkg string) string {
	t.Helper()
	b, err := os.ReadFile("package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	var lock struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		t.Fatalf("package-lock.json: %v", err)
	}
	v := lock.Packages["node_modules/"+pkg].Version
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
		t.Fatalf("package-lock.json pins %s at %q, want an exact version", pkg, v)
	}
	return v
}

func TestHandler(t *testing.T) {
	h := Handler()
	index, err := fs.ReadFile(Assets(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, p := range []string{"/dashboard", "/dashboard/", "/dashboard?token=x"} {
		w := get(p)
		if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), index) {
			t.Errorf("GET %s: %d, body %d bytes, want 200 and index.html (%d bytes)", p, w.Code, w.Body.Len(), len(index))
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET %s: Content-Type %q, want text/html", p, ct)
		}
		for _, k := range []string{"Content-Security-Policy", "Etag", "Cache-Control", "X-Content-Type-Options"} {
			if w.Header().Get(k) == "" {
				t.Errorf("GET %s: no %s header", p, k)
			}
		}
	}
	w := get("/dashboard/vendor/uplot/uPlot.esm.js")
	if ct := w.Header().Get("Content-Type"); w.Code != http.StatusOK || !strings.Contains(ct, "javascript") {
		t.Errorf("GET uPlot.esm.js: %d %q, want 200 and a JavaScript type", w.Code, ct)
	}
	if w2 := get("/dashboard/vendor/uplot/uPlot.esm.js", "If-None-Match", w.Header().Get("Etag")); w2.Code != http.StatusNotModified {
		t.Errorf("GET uPlot.esm.js with its ETag: %d, want 304", w2.Code)
	}
	for _, p := range []string{"/dashboardx", "/dashboard/vendor", "/dashboard/vendor/", "/dashboard/nope.js", "/dashboard/../web.go", "/other"} {
		if w := get(p); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
}
