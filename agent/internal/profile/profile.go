// Package profile turns a firmware profile — declarative YAML data describing how one model of
// POS terminal prints — into a streaming parser that produces canonical records
// (protocol.Record) from captured bytes.
//
// # Basics
//
// A Profile is loaded with Load (one YAML document) or LoadFS (every *.yaml in a folder; the
// shipped set is embedded in package firmwareprofiles). Unknown keys are errors that name the key
// and suggest the nearest known one. NewParser returns a Parser for one terminal; Feed it bytes
// as they arrive with the time they arrived, call Flush periodically (idle gaps end partial lines
// and force-close transactions after the profile's timeout) and Close at end of input.
//
// Every decoded line is masked by package pan before anything else sees it: Result.Raw and every
// string in a Record hold masked text only.
//
// Each Result is one transaction: a Record (possibly with Flags naming invariants it broke —
// captured, not dropped) or, when it cannot be parsed, Err plus the masked Raw text for
// quarantine. Text outside any transaction is never dropped silently: it comes back as a Result
// with Err wrapping ErrOutsideTransaction.
//
// # Caveats
//
//   - A return record's money is negative (protocol v1), whatever sign the terminal printed;
//     refunds/voids in a report are magnitudes (non-negative). A sale's item lines may still
//     be negative.
//   - The configured terminal given to NewParser wins over one read from the text.
//   - Record.Time is built from the printed date and time in the profile's timezone (default UTC).
//   - Parsers are not safe for concurrent use; a Profile is (it is read-only after Load).
package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Profile is one firmware profile. The exported fields mirror the YAML keys (see
// firmware-profiles/README.md); compiled state is private.
type Profile struct {
	Name           string         `yaml:"name"`
	Version        int            `yaml:"version"`
	Description    string         `yaml:"description"`
	Identity       Identity       `yaml:"identity"`
	Transport      Transport      `yaml:"transport"`
	Decoding       Decoding       `yaml:"decoding"`
	Cleaning       Cleaning       `yaml:"cleaning"`
	Card           CardOptions    `yaml:"card"`
	Framing        Framing        `yaml:"framing"`
	Classification Classification `yaml:"classification"`
	Fields         Fields         `yaml:"fields"`
	Numbers        Numbers        `yaml:"numbers"`
	ZReport        ZReportMap     `yaml:"z_report"`
	Invariants     Invariants     `yaml:"invariants"`
	CSV            CSVFormat      `yaml:"csv"`
	// Extras name words a line may carry around the fields its rules capture (titles such as
	// COPY or REPRINT, clerk or manager notes); a rule lists the extras it tolerates.
	Extras map[string]Extra `yaml:"extras"`

	c compiled
}

// Identity says which terminal the profile is for.
type Identity struct {
	Vendor   string `yaml:"vendor"`
	Model    string `yaml:"model"`
	Firmware string `yaml:"firmware"`
	Port     string `yaml:"port"` // journal, receipt, export
}

// Transport holds the default transport settings; a source URL overrides them.
type Transport struct {
	Source      string `yaml:"source"` // serial, tcp-listen or dir
	Baud        int    `yaml:"baud"`
	DataBits    int    `yaml:"data_bits"`
	Parity      string `yaml:"parity"` // none, odd, even
	StopBits    int    `yaml:"stop_bits"`
	FlowControl string `yaml:"flow_control"` // none, rts-cts, xon-xoff
	TCPPort     int    `yaml:"tcp_port"`
	FilePattern string `yaml:"file_pattern"` // dir sources: glob of files to pick up
}

// Decoding says how bytes become lines.
type Decoding struct {
	Format    string   `yaml:"format"`  // text (default), canonical-jsonl, csv
	Dialect   string   `yaml:"dialect"` // escpos, star-line, plain (default)
	CodePage  string   `yaml:"code_page"`
	LineEnd   string   `yaml:"line_end"` // lf, crlf, lfcr, cr, any
	IdleFlush Duration `yaml:"idle_flush"`
	MaxLine   int      `yaml:"max_line"`
	// MultiByte is the printer's two-byte text encoding in Kanji mode (gb18030, gbk, big5,
	// shift_jis, euc-kr); empty for single-byte printers. KanjiMode is Kanji mode at start and
	// after ESC @: on (default when multibyte is set) or off (then only FS & turns it on).
	MultiByte string `yaml:"multibyte"`
	KanjiMode string `yaml:"kanji_mode"`
}

// Cleaning rewrites decoded lines before framing.
type Cleaning struct {
	Substitutions []Substitution `yaml:"substitutions"`
	IgnoreLines   []string       `yaml:"ignore_lines"`
	Trim          string         `yaml:"trim"` // right (default), both, none
	DropEmpty     *bool          `yaml:"drop_empty"`
	Dedupe        bool           `yaml:"dedupe"`
	Continuations []Continuation `yaml:"continuations"`
}

// Substitution replaces every match of Pattern with Replace ($1 / ${name} expand).
type Substitution struct {
	Pattern string `yaml:"pattern"`
	Replace string `yaml:"replace"`
}

// Continuation joins a line matching Match onto the previous line (after trimming its left
// side), with Separator in between: for values printed on the next line.
type Continuation struct {
	Match     string `yaml:"match"`
	Separator string `yaml:"separator"`
}

// CardOptions configure card masking.
type CardOptions struct {
	LastFourOnly bool `yaml:"last_four_only"`
}

// Framing finds where a transaction starts and ends.
type Framing struct {
	Start      []Marker `yaml:"start"`
	End        []Marker `yaml:"end"`
	ExtraLines int      `yaml:"extra_lines"`
	Timeout    Duration `yaml:"timeout"`
	OnRestart  string   `yaml:"on_restart"` // close (default), quarantine, ignore
}

// Marker is a text regex or a device event (init, cut, drawer, form_feed).
type Marker struct {
	Text  string `yaml:"text"`
	Event string `yaml:"event"`
}

// Classification decides a transaction's kind: the first rule whose regex matches any line wins.
type Classification struct {
	Default string     `yaml:"default"`
	Rules   []KindRule `yaml:"rules"`
}

// KindRule maps a regex to a kind.
type KindRule struct {
	Match  string   `yaml:"match"`
	Kind   string   `yaml:"kind"`
	Extras []string `yaml:"extras"` // names of top-level extras the line may carry
}

// Extra is a word (or words) a line may carry at its start (before), its end (after) or
// either, besides what a rule's regex describes. A rule that lists it is tried on the line as
// printed first, then with the extra words removed from its ends.
type Extra struct {
	Match string `yaml:"match"`
	Where string `yaml:"where"` // before, after, either (default)
}

// Fields holds the line rules and how to read dates.
type Fields struct {
	DateFormat string            `yaml:"date_format"` // Go layout, e.g. 01/02/2006
	TimeFormat string            `yaml:"time_format"` // Go layout, e.g. 15:04
	Timezone   string            `yaml:"timezone"`    // IANA name, default UTC
	Currency   string            `yaml:"currency"`
	Tenders    map[string]string `yaml:"tenders"`   // printed label → cash, card, check, gift, other
	Unmatched  string            `yaml:"unmatched"` // ignore (default) or flag
	// CellUnits is what the rules' cells widths count: characters (default) or columns (East
	// Asian wide characters take two, as a printer lays them out).
	CellUnits string      `yaml:"cell_units"`
	Rules     []FieldRule `yaml:"rules"`
}

// FieldRule is one line rule: the first matching rule handles a line.
type FieldRule struct {
	Match string            `yaml:"match"`
	Type  string            `yaml:"type"`
	Set   map[string]string `yaml:"set"` // defaults for named groups the regex did not capture
	// Require lists kinds in which the layout always prints a line of this rule's type: a
	// transaction of such a kind in which no rule of this type that lists it handled a line is
	// flagged (rules of one type requiring one kind form a group; any of them will do).
	Require []string `yaml:"require"`
	// Width, when set, is the exact width in characters of the lines this rule handles: in a
	// right-aligned column layout, dropped or inserted bytes change a line's width.
	Width int `yaml:"width"`
	// Extras names top-level extras the line may carry around its fields (width is checked on
	// the line as printed).
	Extras []string `yaml:"extras"`
	// Wrap describes the lines that continue this rule's cells when the layout wraps a cell
	// (a long description, an amount wider than its column); their groups are joined onto the
	// rule's groups.
	Wrap *Wrap `yaml:"wrap"`
	// Cells gives the width in characters of captured cells (group name → width). A cell that
	// fills its width was probably cut: it must be followed by a joined continuation, or by a
	// line another rule handles, or the record is flagged (never silently truncated).
	Cells map[string]int `yaml:"cells"`
}

// Wrap describes continuation lines of a wrapped cell.
type Wrap struct {
	// Match is a regex with named groups (the field rule groups); a following line that
	// matches is joined: each group it captures is appended to the rule's group of that name.
	Match string `yaml:"match"`
	// Separator goes between the pieces of a text group (description, department, tender,
	// brand); default one space. After a piece that filled its cell (see cells) nothing is
	// put in between: the layout cut a word. Numeric groups are always joined without one.
	Separator *string `yaml:"separator"`
	MaxLines  int     `yaml:"max_lines"` // continuation lines at most (default 3)
}

// Numbers says how amounts and quantities are printed.
type Numbers struct {
	Decimal         string   `yaml:"decimal"`   // default "."
	Thousands       string   `yaml:"thousands"` // default ","
	CurrencySymbols []string `yaml:"currency_symbols"`
	Negative        []string `yaml:"negative"` // minus (default), trailing_minus, parens
	ImpliedDecimals bool     `yaml:"implied_decimals"`
	MinorDigits     *int     `yaml:"minor_digits"` // default: fields.currency's ISO 4217 digits (2 if unknown)
	// ExactDecimals: a printed decimal part has exactly minor_digits digits ("1.000,0" is an
	// error, not 1000.00): for layouts that always print every decimal.
	ExactDecimals bool `yaml:"exact_decimals"`
	// Grouping is how digits are grouped by the thousands separator: thousands (default:
	// 1,234,567), indian (12,34,567) or any (not checked).
	Grouping string `yaml:"grouping"`
}

// ZReportMap maps report lines to Z fields.
type ZReportMap struct {
	Rules []ZRule `yaml:"rules"`
}

// ZRule is one report line rule.
type ZRule struct {
	Match  string            `yaml:"match"`
	Field  string            `yaml:"field"`
	Set    map[string]string `yaml:"set"`
	Extras []string          `yaml:"extras"` // names of top-level extras the line may carry
}

// Invariants are checked on every transaction; a failure flags the record.
type Invariants struct {
	LinesTotal       *bool    `yaml:"lines_total"`   // Σlines − discounts + tax = total (default on)
	TendersTotal     *bool    `yaml:"tenders_total"` // Σtenders − change = total (default on)
	LineMath         *bool    `yaml:"line_math"`     // quantity × unit price = amount (default on)
	TaxIncluded      bool     `yaml:"tax_included"`  // prices include tax: Σlines − discounts = total
	Tolerance        int64    `yaml:"tolerance"`     // minor units
	TotalRequired    []string `yaml:"total_required"`
	ReceiptRequired  bool     `yaml:"receipt_required"` // quarantine a transaction without a receipt number
	ZTendersEqualNet bool     `yaml:"z_tenders_equal_net"`
}

// CSVFormat describes the csv export format.
type CSVFormat struct {
	Delimiter string            `yaml:"delimiter"`
	Columns   map[string]string `yaml:"columns"` // canonical column → header name in the file
}

// Duration is a time.Duration read from strings such as "2s" or "1m30s".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (write e.g. 2s or 1m30s): %w", n.Line, n.Value, err)
	}
	*d = Duration(v)
	return nil
}

// ErrOutsideTransaction marks text that arrived while no transaction was open.
var ErrOutsideTransaction = errors.New("text outside a transaction")

// ErrIncomplete marks a transaction that could not be turned into a record.
var ErrIncomplete = errors.New("transaction not parseable")

// Load reads one profile. Unknown keys, bad regexes and bad values are errors that say how to
// fix them.
func Load(r io.Reader) (*Profile, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read profile: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Profile
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("profile: %w", explainYAML(err))
	}
	if err := p.compile(); err != nil {
		if p.Name != "" {
			return nil, fmt.Errorf("profile %s: %w", p.Name, err)
		}
		return nil, fmt.Errorf("profile: %w", err)
	}
	return &p, nil
}

// LoadFS loads every *.yaml file at the top of fsys, keyed by profile name. A file's name
// (without .yaml) must equal its profile's name.
func LoadFS(fsys fs.FS) (map[string]*Profile, error) {
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	out := make(map[string]*Profile, len(names))
	for _, n := range names {
		f, err := fsys.Open(n)
		if err != nil {
			return nil, fmt.Errorf("open profile %s: %w", n, err)
		}
		p, err := Load(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		if want := strings.TrimSuffix(path.Base(n), ".yaml"); p.Name != want {
			return nil, fmt.Errorf("%s: profile name %q must match the file name (rename one of them to %q)", n, p.Name, want)
		}
		out[p.Name] = p
	}
	return out, nil
}

var unknownFieldRE = regexp.MustCompile(`line (\d+): field (\S+) not found in type profile\.(\w+)`)

// explainYAML rewrites yaml.v3's unknown-field errors to name the key, where it is and the
// nearest known key.
func explainYAML(err error) error {
	msg := err.Error()
	ms := unknownFieldRE.FindAllStringSubmatch(msg, -1)
	if len(ms) == 0 {
		return err
	}
	var parts []string
	for _, m := range ms {
		known := yamlKeys(m[3])
		hint := ""
		if s := nearest(m[2], known); s != "" {
			hint = fmt.Sprintf("; did you mean %q?", s)
		}
		parts = append(parts, fmt.Sprintf("line %s: unknown key %q in %s (known keys: %s)%s — fix or remove it",
			m[1], m[2], section(m[3]), strings.Join(known, ", "), hint))
	}
	return fmt.Errorf("%s: %w", strings.Join(parts, "; "), ErrUnknownKey)
}

// ErrUnknownKey is wrapped by Load's error for a key the profile format does not have.
var ErrUnknownKey = errors.New("unknown key")

var typesByName = map[string]reflect.Type{}

func init() {
	for _, v := range []any{Profile{}, Identity{}, Transport{}, Decoding{}, Cleaning{}, Substitution{}, Continuation{},
		CardOptions{}, Framing{}, Marker{}, Classification{}, KindRule{}, Extra{}, Fields{}, FieldRule{}, Wrap{}, Numbers{},
		ZReportMap{}, ZRule{}, Invariants{}, CSVFormat{}} {
		t := reflect.TypeOf(v)
		typesByName[t.Name()] = t
	}
}

func section(typeName string) string {
	if typeName == "Profile" {
		return "the top level"
	}
	return typeName
}

func yamlKeys(typeName string) []string {
	t, ok := typesByName[typeName]
	if !ok {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("yaml"); tag != "" && tag != "-" {
			keys = append(keys, strings.Split(tag, ",")[0])
		}
	}
	sort.Strings(keys)
	return keys
}

// nearest returns the known key closest to s by edit distance, if it is close enough.
func nearest(s string, known []string) string {
	best, bestD := "", 1<<30
	for _, k := range known {
		if d := editDistance(s, k); d < bestD {
			best, bestD = k, d
		}
	}
	if bestD <= max(2, len(s)/3) {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
