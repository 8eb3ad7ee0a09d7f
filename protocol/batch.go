package protocol

import (
	"encoding/json"
	"slices"
	"strconv"
)

// BatchHeader is a Batch without its records: the members AppendBatch writes around them.
type BatchHeader struct {
	Store     string
	Epoch     string
	Replay    bool
	CommandID string
}

// AppendBatch appends to dst the JSON of a Batch of this Version with h's fields and the given
// records, and returns the extended buffer. Each record is the JSON encoding of one Record, as
// an agent stores it; it is written as is, neither decoded nor checked, so the caller vouches
// that it is one JSON value and that the records are in the order the Batch requires.
//
// The result is what json.Marshal writes for the equivalent Batch, byte for byte: the same
// members in the same order, replay only when set, command_id only when not empty, strings
// escaped the same way (invalid UTF-8 becomes U+FFFD). No records encode as an empty array,
// which DecodeBatch rejects.
func AppendBatch(dst []byte, h BatchHeader, records [][]byte) []byte {
	n := len(`{"v":,"store":"","epoch":"","records":[],"replay":true,"command_id":""}`) + 20 +
		len(h.Store) + len(h.Epoch) + len(h.CommandID)
	for _, r := range records {
		n += len(r) + 1
	}
	dst = slices.Grow(dst, n)
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, Version, 10)
	dst = append(dst, `,"store":`...)
	dst = appendJSONString(dst, h.Store)
	dst = append(dst, `,"epoch":`...)
	dst = appendJSONString(dst, h.Epoch)
	dst = append(dst, `,"records":[`...)
	for i, r := range records {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, r...)
	}
	dst = append(dst, ']')
	if h.Replay {
		dst = append(dst, `,"replay":true`...)
	}
	if h.CommandID != "" {
		dst = append(dst, `,"command_id":`...)
		dst = appendJSONString(dst, h.CommandID)
	}
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string exactly as encoding/json writes it. Ids are
// plain ASCII almost always and are copied; anything else goes through encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(dst, q...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
