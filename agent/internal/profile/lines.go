package profile

import (
	"bytes"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/pan"
)

// lineSplitter splits a byte stream into masked lines for the record-per-line formats
// (canonical-jsonl, csv). Lines end at LF; a CR before it is dropped.
type lineSplitter struct {
	masker *pan.Masker
	// prepare, if set, rewrites each line before it is masked (canonical-jsonl: JSON escapes
	// written out, so the masker sees every digit).
	prepare  func([]byte) []byte
	buf      []byte
	lastData time.Time
	stats    Stats
	out      []Result
}

func newLineSplitter(p *Profile) lineSplitter {
	return lineSplitter{masker: pan.New(pan.Options{LastFourOnly: p.Card.LastFourOnly})}
}

// maxRecordLine bounds one line; longer input is quarantined in pieces.
const maxRecordLine = 1 << 20

// split appends b and calls fn for every complete, masked line.
func (s *lineSplitter) split(b []byte, now time.Time, fn func(line string, dropped bool)) {
	if len(b) > 0 {
		s.lastData = now
	}
	s.buf = append(s.buf, b...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			if len(s.buf) > maxRecordLine {
				s.line(s.buf, fn)
				s.buf = s.buf[:0]
			}
			return
		}
		s.line(s.buf[:i], fn)
		s.buf = s.buf[i+1:]
	}
}

// rest emits a final line without a terminator.
func (s *lineSplitter) rest(fn func(line string, dropped bool)) {
	if len(bytes.TrimSpace(s.buf)) > 0 {
		s.line(s.buf, fn)
	}
	s.buf = nil
}

func (s *lineSplitter) line(l []byte, fn func(string, bool)) {
	l = bytes.TrimSuffix(l, []byte("\r"))
	s.stats.Lines++
	if s.prepare != nil {
		l = s.prepare(l)
	}
	m, res := s.masker.Mask(l)
	fn(string(m), res.Dropped())
}

func (s *lineSplitter) emit(r Result) {
	if r.Err != nil {
		r.Record = nil
		s.stats.Quarantined++
	} else {
		s.stats.Records++
		if len(r.Flags) > 0 {
			s.stats.Flagged++
		}
	}
	s.out = append(s.out, r)
}

func (s *lineSplitter) take() []Result {
	out := s.out
	s.out = nil
	return out
}

func (s *lineSplitter) Stats() Stats {
	st := s.stats
	ms := s.masker.Stats()
	st.PANsMasked, st.LinesDropped = ms.PANsMasked, ms.TrackDropped+ms.LabelDropped
	return st
}
