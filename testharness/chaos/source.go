package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/sim"
)

// Terminal is a simulated terminal writing canonical JSON lines to a journal file, as a POS
// that keeps an electronic journal does (the agent tails it with the canonical-jsonl profile).
// Every record is fsynced before it is entered in the History: the history holds exactly what
// a reader could find in the file. After PerDay transactions it prints the day's Z report and
// starts the next business date. The file keeps what it was written, so every record counts
// as kept.
type Terminal struct {
	Store, ID, Path string
	PerDay          int

	h     *History
	f     *os.File
	seed  uint64
	day   time.Time
	gen   *sim.Generator
	today []protocol.Record
	n     int
}

// NewTerminal creates (truncates) the journal at path; the first business date is first.
func NewTerminal(h *History, store, id, path string, first time.Time, perDay int, seed uint64) (*Terminal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("terminal %s journal: %w", id, err)
	}
	t := &Terminal{Store: store, ID: id, Path: path, PerDay: perDay, h: h, f: f, seed: seed, day: first}
	t.newDay()
	return t, nil
}

func (t *Terminal) newDay() {
	t.gen = sim.New(t.ID, t.day.Format("2006-01-02"), t.seed^uint64(t.day.Unix()), nil, 1)
	t.today = nil
}

// Emit writes the next n transactions (and the Z reports of days they complete), fsyncs the
// journal and enters them in the history.
func (t *Terminal) Emit(n int) error {
	var out []protocol.Record
	for range n {
		r := t.gen.Next()
		out = append(out, r)
		t.today = append(t.today, r)
		if len(t.today) >= t.PerDay {
			out = append(out, t.z())
			t.day = t.day.AddDate(0, 0, 1)
			t.newDay()
		}
	}
	return t.write(out)
}

// Close prints the Z report of the day in progress (if it has transactions) and closes.
func (t *Terminal) Close() error {
	var err error
	if len(t.today) > 0 {
		err = t.write([]protocol.Record{t.z()})
		t.today = nil
	}
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Emitted is how many records (Z reports included) this terminal wrote.
func (t *Terminal) Emitted() int { return t.n }

// z is the Z report of the current day: its figures from the day's transactions.
func (t *Terminal) z() protocol.Record {
	fig := Figures(t.today)
	last := t.today[len(t.today)-1]
	tm, _ := time.Parse(time.RFC3339, last.Time)
	return protocol.Record{Kind: protocol.KindZReport, Terminal: t.ID, Receipt: "Z" + strconv.Itoa(t.day.YearDay()),
		BusinessDate: t.day.Format("2006-01-02"), Time: tm.Add(time.Minute).Format(time.RFC3339), Currency: "USD", Z: &fig}
}

func (t *Terminal) write(recs []protocol.Record) error {
	if len(recs) == 0 {
		return nil
	}
	var buf []byte
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf = append(append(buf, b...), '\n')
	}
	if _, err := t.f.Write(buf); err != nil {
		return fmt.Errorf("terminal %s journal: %w", t.ID, err)
	}
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("terminal %s journal: %w", t.ID, err)
	}
	for _, r := range recs {
		if err := t.h.Emit(t.Store, r, true); err != nil {
			return err
		}
	}
	t.n += len(recs)
	return nil
}
