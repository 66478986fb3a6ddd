package ws

import (
	"log"
	"regexp"
	"strings"

	"github.com/rs/zerolog"
)

// newErrorLog routes net/http's own messages (TLS handshake errors, a
// panic in a handler) to the server's logger, at warn, with any token in
// them masked: a URL it quotes may carry ?token=.
func newErrorLog(l zerolog.Logger) *log.Logger {
	return log.New(errorLogWriter{l}, "", 0)
}

type errorLogWriter struct{ l zerolog.Logger }

func (w errorLogWriter) Write(p []byte) (int, error) {
	w.l.Warn().Str("error", Redact(strings.TrimSpace(string(p)))).Msg("http server")
	return len(p), nil
}

var tokenParam = regexp.MustCompile(`(?i)(token=)[^&\s"']*`)

// Redact masks the value of every token= query parameter in s, for logs.
func Redact(s string) string { return tokenParam.ReplaceAllString(s, "${1}REDACTED") }
