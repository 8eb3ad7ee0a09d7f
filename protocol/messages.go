package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"
)

// Batch is the payload of RecordsTopic: records of one store and one epoch in ascending,
// contiguous seq order.
type Batch struct {
	V       int      `json:"v"`
	Store   string   `json:"store"`
	Epoch   string   `json:"epoch"`
	Records []Record `json:"records"`
	// Replay marks records sent again on a replay command: ascending but not necessarily
	// contiguous, all at or below the hub's progress. The hub re-inserts any it lacks.
	Replay    bool   `json:"replay,omitempty"`
	CommandID string `json:"command_id,omitempty"`
}

// Ack is the payload of AcksTopic, published by the hub only after its durable commit.
// AppliedThrough is cumulative: every record of Epoch with seq <= AppliedThrough is stored at
// the hub. ResendFrom, when non-zero, asks the agent to rewind and send again from that seq
// because the hub saw a gap.
type Ack struct {
	V              int    `json:"v"`
	Store          string `json:"store"`
	Epoch          string `json:"epoch"`
	AppliedThrough uint64 `json:"applied_through"`
	ResendFrom     uint64 `json:"resend_from,omitempty"`
	Reason         string `json:"reason,omitempty"`
	// QuarantineThrough acknowledges that the hub has raised exceptions for every quarantined
	// capture of Epoch with Seq <= QuarantineThrough (see Status.Quarantine). Added 2026-11-26.
	QuarantineThrough uint64 `json:"quarantine_through,omitempty"`
	// Rejected, when set, says the hub will never apply the batch of Epoch from Rejected.From
	// through Rejected.To: it failed validation, and the hub has durably raised an exception
	// naming the store, the seqs and the reason. The agent keeps the records and stops sending
	// the epoch from From on (sending it again would only be rejected again). Added 2026-12-01.
	Rejected *Rejection `json:"rejected,omitempty"`
}

// Rejection is a permanent refusal of records (see Ack.Rejected).
type Rejection struct {
	From   uint64 `json:"from"`
	To     uint64 `json:"to"`
	Reason string `json:"reason"`
}

// Quarantined describes one capture that could not be parsed; the raw text is masked.
type Quarantined struct {
	ID       string    `json:"id"`
	Seq      uint64    `json:"seq,omitempty"` // order within the epoch, for QuarantineThrough
	Terminal string    `json:"terminal"`
	At       time.Time `json:"at"`
	Reason   string    `json:"reason"`
	Excerpt  string    `json:"excerpt,omitempty"`
}

// Status is the retained payload of StatusTopic. The agent's Will carries State "offline".
type Status struct {
	V               int                  `json:"v"`
	Store           string               `json:"store"`
	State           string               `json:"state"` // "online" or "offline"
	Version         string               `json:"version,omitempty"`
	Clock           time.Time            `json:"clock,omitzero"`
	Epoch           string               `json:"epoch,omitempty"`
	LastSeq         uint64               `json:"last_seq,omitempty"`
	LastAck         uint64               `json:"last_ack,omitempty"`
	Backlog         uint64               `json:"backlog"`
	OldestUnsentAge float64              `json:"oldest_unsent_age_seconds"`
	LastCapture     map[string]time.Time `json:"last_capture,omitempty"`
	// Quarantine lists quarantined captures the hub has not yet acknowledged (oldest first, a
	// page at a time); the hub answers with Ack.QuarantineThrough.
	Quarantine      []Quarantined `json:"quarantine,omitempty"`
	QuarantineCount uint64        `json:"quarantine_count,omitempty"`
	Alarms          []string      `json:"alarms,omitempty"`
	// InventoryVersion is the version of the item master the agent holds (0: none).
	InventoryVersion uint64 `json:"inventory_version,omitempty"`
	// CommandResults reports recent commands (newest last, bounded).
	CommandResults []CommandResult `json:"command_results,omitempty"`
	// SpoolUsedBytes is how much of its spool file the agent uses and SpoolMaxBytes the
	// spool.max_size it alarms at (0: no limit, or an agent older than these fields, which
	// gets no spool alert at the hub). Added 2026-12-01.
	SpoolUsedBytes int64 `json:"spool_used_bytes,omitempty"`
	SpoolMaxBytes  int64 `json:"spool_max_bytes,omitempty"`
	// Update reports the last release offered (nil: none since this agent's data dir began).
	Update *UpdateReport `json:"update,omitempty"`
	// Config reports the last configuration push (nil: none).
	Config *ConfigReport `json:"config,omitempty"`
	// OS and Arch are the agent's GOOS and GOARCH; Channel its update channel.
	OS      string `json:"os,omitempty"`
	Arch    string `json:"arch,omitempty"`
	Channel string `json:"channel,omitempty"`
}

// Errors returned by the decoders.
var (
	ErrDecode     = errors.New("undecodable payload")
	ErrTooNew     = errors.New("payload from a newer protocol version")
	ErrTooOld     = errors.New("payload from an older protocol version")
	ErrWrongStore = errors.New("payload names another store than its topic")
)

func checkVersion(v int) error {
	switch {
	case v == Version:
		return nil
	case v > Version:
		return fmt.Errorf("%w: v%d, this side speaks v%d", ErrTooNew, v, Version)
	default:
		return fmt.Errorf("%w: v%d, this side speaks v%d", ErrTooOld, v, Version)
	}
}

// DecodeBatch decodes and fully validates a batch that arrived on the topic of topicStore.
// It returns an error wrapping ErrDecode, ErrTooNew, ErrTooOld, ErrWrongStore or a
// *ValidationError; it never returns a partly valid batch.
//
// The usual payload is decoded in a single pass (decodeBatchFast); any other one by the
// general decoder below, with the same result.
func DecodeBatch(topicStore string, payload []byte) (*Batch, error) {
	b, raws, fast := decodeBatchFast(payload)
	if !fast {
		var err error
		if b, raws, err = decodeBatchGeneral(payload); err != nil {
			return nil, err
		}
	}
	for i, raw := range raws {
		if !utf8.Valid(raw) {
			return nil, &ValidationError{fmt.Sprintf("records[%d]", i), "not valid UTF-8"}
		}
		if err := checkStorable(raw); err != nil {
			return nil, &ValidationError{fmt.Sprintf("records[%d]", i), err.Error()}
		}
		b.Records[i].Wire = raw
	}
	return validateBatch(topicStore, &b)
}

// decodeBatchGeneral decodes any batch encoding/json accepts: the envelope with each record
// kept raw, then each record.
func decodeBatchGeneral(payload []byte) (Batch, [][]byte, error) {
	var wire struct {
		Batch
		Records []json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(payload, &wire); err != nil {
		return Batch{}, nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	b := wire.Batch
	b.Records = make([]Record, len(wire.Records))
	raws := make([][]byte, len(wire.Records))
	for i, raw := range wire.Records {
		if err := json.Unmarshal(raw, &b.Records[i]); err != nil {
			return Batch{}, nil, fmt.Errorf("%w: records[%d]: %v", ErrDecode, i, err)
		}
		if !utf8.Valid(raw) {
			return Batch{}, nil, &ValidationError{fmt.Sprintf("records[%d]", i), "not valid UTF-8"}
		}
		if err := checkStorable(raw); err != nil {
			return Batch{}, nil, &ValidationError{fmt.Sprintf("records[%d]", i), err.Error()}
		}
		raws[i] = raw
	}
	return b, raws, nil
}

// validateBatch checks a decoded batch against its topic and the protocol's rules.
func validateBatch(topicStore string, b *Batch) (*Batch, error) {
	if err := checkVersion(b.V); err != nil {
		return nil, err
	}
	if b.Store != topicStore {
		return nil, fmt.Errorf("%w: topic %q, batch %s", ErrWrongStore, topicStore, quote(b.Store))
	}
	if b.Epoch == "" {
		return nil, &ValidationError{"epoch", "missing"}
	}
	if len(b.Records) == 0 {
		return nil, &ValidationError{"records", "empty batch"}
	}
	for i := range b.Records {
		r := &b.Records[i]
		if r.Store != b.Store || r.Epoch != b.Epoch {
			return nil, fmt.Errorf("records[%d] (seq %d): %w", i, r.Seq, ErrWrongStore)
		}
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("records[%d] (seq %d): %w", i, r.Seq, err)
		}
		if i > 0 && !b.Replay && r.Seq != b.Records[i-1].Seq+1 {
			return nil, &ValidationError{fmt.Sprintf("records[%d].seq", i), "batch is not contiguous"}
		}
		if i > 0 && b.Replay && r.Seq <= b.Records[i-1].Seq {
			return nil, &ValidationError{fmt.Sprintf("records[%d].seq", i), "replay batch is not ascending"}
		}
	}
	return b, nil
}

// DecodeAck decodes an ack.
func DecodeAck(payload []byte) (*Ack, error) {
	var a Ack
	if err := json.Unmarshal(payload, &a); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	if err := checkVersion(a.V); err != nil {
		return nil, err
	}
	if a.Epoch == "" {
		return nil, &ValidationError{"epoch", "missing"}
	}
	return &a, nil
}

// DecodeStatus decodes a status message.
func DecodeStatus(topicStore string, payload []byte) (*Status, error) {
	var s Status
	if err := json.Unmarshal(payload, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	if err := checkVersion(s.V); err != nil {
		return nil, err
	}
	if s.Store != topicStore {
		return nil, fmt.Errorf("%w: topic %q, status %s", ErrWrongStore, topicStore, quote(s.Store))
	}
	return &s, nil
}

// Bound cuts what one status can make the hub keep: each list to MaxStatusList entries (the
// agent pages quarantined captures, so the rest comes with later statuses; a command result's
// seqs to ten times that) and each text to MaxText bytes, made safe for storage (SafeText). It
// reports whether anything was cut.
func (s *Status) Bound() bool {
	cut := len(s.Quarantine) > MaxStatusList || len(s.Alarms) > MaxStatusList ||
		len(s.CommandResults) > MaxStatusList || len(s.LastCapture) > MaxStatusList
	s.Quarantine = s.Quarantine[:min(len(s.Quarantine), MaxStatusList)]
	s.Alarms = s.Alarms[:min(len(s.Alarms), MaxStatusList)]
	s.CommandResults = s.CommandResults[:min(len(s.CommandResults), MaxStatusList)]
	if len(s.LastCapture) > MaxStatusList {
		keys := slices.Sorted(maps.Keys(s.LastCapture))
		for _, k := range keys[MaxStatusList:] {
			delete(s.LastCapture, k)
		}
	}
	text := func(p *string) {
		if v := Excerpt(*p); v != *p {
			*p, cut = v, true
		}
	}
	for _, p := range []*string{&s.State, &s.Version, &s.Epoch, &s.OS, &s.Arch, &s.Channel} {
		text(p)
	}
	if u := s.Update; u != nil {
		for _, p := range []*string{&u.CommandID, &u.Version, &u.From, &u.State, &u.Detail} {
			text(p)
		}
	}
	if c := s.Config; c != nil {
		for _, p := range []*string{&c.CommandID, &c.State, &c.Detail} {
			text(p)
		}
	}
	for i := range s.Quarantine {
		q := &s.Quarantine[i]
		for _, p := range []*string{&q.ID, &q.Terminal, &q.Reason, &q.Excerpt} {
			text(p)
		}
	}
	for i := range s.Alarms {
		text(&s.Alarms[i])
	}
	for i := range s.CommandResults {
		cr := &s.CommandResults[i]
		text(&cr.ID)
		text(&cr.Detail)
		if len(cr.Seqs) > 10*MaxStatusList { // Found keeps the count
			cr.Seqs, cut = cr.Seqs[:10*MaxStatusList], true
		}
	}
	for k, v := range s.LastCapture {
		if safe := Excerpt(k); safe != k {
			delete(s.LastCapture, k)
			s.LastCapture[safe], cut = v, true
		}
	}
	return cut
}
