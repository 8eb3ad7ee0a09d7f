package broker

import (
	"context"
	"log/slog"
)

// redactedKeys are attributes mochi attaches to some log lines that hold whole packets or Wills:
// payloads (sales data) and, for CONNECT packets, passwords. They never reach our logs.
var redactedKeys = map[string]bool{"pk": true, "packet": true, "will": true, "data": true}

// redactHandler wraps the handler given to mochi and replaces packet-valued attributes.
type redactHandler struct{ next slog.Handler }

func (h redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h redactHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
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
	return a
}
