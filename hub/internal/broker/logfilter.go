package broker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// redactedKeys are attributes mochi attaches to some log lines that hold whole packets or Wills:
// payloads (sales data) and, for CONNECT packets, passwords. They never reach our logs.
var redactedKeys = map[string]bool{"pk": true, "packet": true, "will": true, "data": true}

// maxLogString caps every string in a broker log line (message, attribute values, errors):
// topics, client ids and usernames come from clients and may be up to 64 KiB each.
const maxLogString = 256

// capString cuts s to maxLogString bytes, saying how much was cut.
func capString(s string) string {
	if len(s) <= maxLogString {
		return s
	}
	return fmt.Sprintf("%s…[%d bytes cut]", strings.ToValidUTF8(s[:maxLogString], ""), len(s)-maxLogString)
}

// redactHandler wraps the broker's and mochi's log handler: it replaces packet-valued
// attributes and caps strings (capString).
type redactHandler struct{ next slog.Handler }

func (h redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h redactHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, capString(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redact(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = redact(a)
	}
	return redactHandler{h.next.WithAttrs(clean)}
}

func (h redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{h.next.WithGroup(name)}
}

func redact(a slog.Attr) slog.Attr {
	if redactedKeys[a.Key] {
		return slog.String(a.Key, "[redacted]")
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, capString(v.String()))
	case slog.KindAny:
		if e, ok := v.Any().(error); ok {
			return slog.String(a.Key, capString(e.Error()))
		}
		if s, ok := v.Any().(fmt.Stringer); ok {
			return slog.String(a.Key, capString(s.String()))
		}
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, len(attrs))
		for i, g := range attrs {
			out[i] = redact(g)
		}
		return slog.Group(a.Key, out...)
	}
	return a
}
