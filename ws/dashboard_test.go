package ws

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// noRedirect is a client that reports redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func getWith(t *testing.T, url string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// browserAccept is what Chromium sends when it navigates.
const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

// TestDashboardRoutes checks that GET / stays health JSON for curl and
// programs, sends a browser to the dashboard, and that the dashboard is
// served.
func TestDashboardRoutes(t *testing.T) {
	ts := newTestServer(t, &fakeJobs{run: trainScript}, nil)

	for _, accept := range []string{"", "*/*", "application/json"} {
		resp := getWith(t, ts.URL+"/", "Accept", accept)
		var h Health
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != http.StatusOK || h.Status != "ok" {
			t.Errorf("GET / with Accept %q: %s, %v: want 200 and health JSON", accept, resp.Status, err)
		}
		if !slices.Contains(h.Endpoints, "GET /dashboard") {
			t.Errorf("health endpoints %q lack GET /dashboard", h.Endpoints)
		}
	}

	resp := getWith(t, ts.URL+"/", "Accept", browserAccept)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard" {
		t.Errorf("a browser's GET /: %s to %q, want 303 to /dashboard", resp.Status, resp.Header.Get("Location"))
	}

	for _, p := range []string{"/dashboard", "/dashboard/"} {
		resp := getWith(t, ts.URL+p, "Accept", browserAccept)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(b), "Kairoscope") {
			t.Errorf("GET %s: %s %q, want 200 and the dashboard page", p, resp.Status, resp.Header.Get("Content-Type"))
		}
	}
	if resp := getWith(t, ts.URL+"/dashboard/no-such-asset.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET a missing asset: %s, want 404", resp.Status)
	}
}

// TestDashboardToken checks that with a token the dashboard's static files
// are served without it (a browser cannot attach it to a page's assets),
// while GET / and the API still demand it, and that the redirect from GET /
// keeps ?token= for the page to pass on.
func TestDashboardToken(t *testing.T) {
	ts := newTestServer(t, &fakeJobs{run: trainScript}, func(c *Config) { c.Token = "s3cret" })

	if resp := getWith(t, ts.URL+"/dashboard", "Accept", browserAccept); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /dashboard without the token: %s, want 200", resp.Status)
	}
	if resp := getWith(t, ts.URL+"/dashboard/vendor/uplot/uPlot.esm.js"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET a dashboard asset without the token: %s, want 200", resp.Status)
	}
	for _, p := range []string{"/", "/api/runs", "/api/datasets"} {
		if resp := getWith(t, ts.URL+p, "Accept", browserAccept); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %s, want 401", p, resp.Status)
		}
	}
	resp := getWith(t, ts.URL+"/?token=s3cret", "Accept", browserAccept)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard?token=s3cret" {
		t.Errorf("a browser's GET /?token=: %s to %q, want 303 to /dashboard?token=s3cret", resp.Status, resp.Header.Get("Location"))
	}
	if resp := getWith(t, ts.URL+"/?token=s3cret", "Accept", "*/*"); resp.StatusCode != http.StatusOK {
		t.Errorf("curl's GET /?token=: %s, want 200", resp.Status)
	}
}

// TestPrefersHTML: the negotiation of GET /. HTML wins only when named
// (never through a wildcard) with a weight above 0 and at least JSON's.
func TestPrefersHTML(t *testing.T) {
	for _, tc := range []struct {
		accept []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"*/*"}, false}, // curl
		{[]string{"application/json"}, false},
		{[]string{"text/*"}, false},
		{[]string{browserAccept}, true},
		{[]string{"text/html"}, true},
		{[]string{"TEXT/HTML; charset=utf-8"}, true},
		{[]string{"application/xhtml+xml"}, true},
		{[]string{"text/html;q=0"}, false},
		{[]string{"text/html;q=nope"}, false},
		{[]string{"application/json, text/html;q=0.5"}, false},
		{[]string{"application/json;q=0.5, text/html"}, true},
		{[]string{"text/html;q=0.9, application/*;q=0.9"}, true}, // a tie goes to the page
		{[]string{"text/html;q=0.5, application/*;q=0.9, */*;q=0.1"}, false},
		{[]string{"text/html;q=0.5", "*/*;q=0.1"}, true}, // several Accept lines
	} {
		if got := prefersHTML(tc.accept); got != tc.want {
			t.Errorf("prefersHTML(%q) = %v, want %v", tc.accept, got, tc.want)
		}
	}
}

// TestDashboardRedirectKeepsQuery: the redirect keeps the whole query, in
// order, and GET / says that its answer varies with Accept.
func TestDashboardRedirectKeepsQuery(t *testing.T) {
	ts := newTestServer(t, &fakeJobs{run: trainScript}, nil)
	resp := getWith(t, ts.URL+"/?token=a%2Bb&x=1", "Accept", "text/html")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard?token=a%2Bb&x=1" {
		t.Errorf("GET /?token=a%%2Bb&x=1 as a browser: %s to %q, want 303 to /dashboard?token=a%%2Bb&x=1", resp.Status, resp.Header.Get("Location"))
	}
	for _, accept := range []string{"text/html", "*/*"} {
		if v := getWith(t, ts.URL+"/", "Accept", accept).Header.Get("Vary"); v != "Accept" {
			t.Errorf("GET / with Accept %q: Vary %q, want Accept", accept, v)
		}
	}
}
