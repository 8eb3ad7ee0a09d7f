package protocol

import (
	"aead.dev/minisign"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Releases and remote configuration travel as signed manifests: the hub's operator signs the
// manifest's exact JSON bytes with a minisign key (the same key signs the binary itself); the
// agent verifies the signature against the public keys built into it before it reads a field.
// The hub only relays what it was given: it cannot forge or alter a manifest.

// Manifest kinds.
const (
	ManifestBinary = "binary" // a release of the agent binary
	ManifestConfig = "config" // configuration overrides for one store
)

// Product names a manifest's subject.
const ProductAgent = "lanebridge-agent"

// ManifestVersion is the manifest format version.
const ManifestVersion = 1

// Manifest is the signed description of a release or of a configuration push. Only the fields
// of its Kind are set.
type Manifest struct {
	V         int       `json:"v"`
	Kind      string    `json:"kind"`
	Product   string    `json:"product"`
	Published time.Time `json:"published"`
	Expires   time.Time `json:"expires"`

	// binary
	Version string `json:"version,omitempty"` // semantic version, "v1.4.2"
	OS      string `json:"os,omitempty"`      // GOOS
	Arch    string `json:"arch,omitempty"`    // GOARCH
	Channel string `json:"channel,omitempty"` // "stable", "beta", …
	SHA256  string `json:"sha256,omitempty"`  // hex, of the binary
	Size    int64  `json:"size,omitempty"`    // bytes of the binary
	MinFrom string `json:"min_from,omitempty"`
	// BinarySignature is the minisign signature (.minisig file text) of the binary's bytes.
	BinarySignature string `json:"binary_signature,omitempty"`

	// config
	Store         string `json:"store,omitempty"`
	ConfigVersion uint64 `json:"config_version,omitempty"` // increases with every push to Store
	Overrides     string `json:"overrides,omitempty"`      // YAML, merged over the agent's own file
}

// SignedManifest is a manifest as it travels: Body holds the manifest's exact JSON bytes (as a
// string) and Signature the minisign signature (.minisig text) of those bytes.
type SignedManifest struct {
	Body      string `json:"body"`
	Signature string `json:"signature"`
}

// Limits on what a manifest may carry.
const (
	MaxManifestBytes    = 64 << 10
	MaxOverridesBytes   = 32 << 10
	MaxReleaseBinary    = 256 << 20
	maxSignatureBytes   = 4 << 10
	maxChannelNameBytes = 32
)

var (
	reHex64   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	reChannel = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	reGoName  = regexp.MustCompile(`^[a-z0-9]+$`)
)

// ParseManifest decodes and checks a manifest body (already verified by the caller).
func ParseManifest(body []byte) (*Manifest, error) {
	if len(body) > MaxManifestBytes {
		return nil, &ValidationError{"manifest", fmt.Sprintf("%d bytes, the limit is %d", len(body), MaxManifestBytes)}
	}
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrDecode, err)
	}
	if m.V != ManifestVersion {
		return nil, &ValidationError{"v", fmt.Sprintf("manifest format %d, this side reads %d", m.V, ManifestVersion)}
	}
	if m.Product != ProductAgent {
		return nil, &ValidationError{"product", fmt.Sprintf("%q is not %s", m.Product, ProductAgent)}
	}
	if m.Expires.IsZero() {
		return nil, &ValidationError{"expires", "missing: every manifest expires"}
	}
	switch m.Kind {
	case ManifestBinary:
		if _, err := ParseSemver(m.Version); err != nil {
			return nil, &ValidationError{"version", err.Error()}
		}
		if m.MinFrom != "" {
			if _, err := ParseSemver(m.MinFrom); err != nil {
				return nil, &ValidationError{"min_from", err.Error()}
			}
		}
		if !reGoName.MatchString(m.OS) || !reGoName.MatchString(m.Arch) {
			return nil, &ValidationError{"os/arch", fmt.Sprintf("%q/%q is not a GOOS/GOARCH pair", m.OS, m.Arch)}
		}
		if len(m.Channel) > maxChannelNameBytes || !reChannel.MatchString(m.Channel) {
			return nil, &ValidationError{"channel", fmt.Sprintf("%q: lower-case letters, digits and '-'", m.Channel)}
		}
		if !reHex64.MatchString(m.SHA256) {
			return nil, &ValidationError{"sha256", "not 64 lower-case hex digits"}
		}
		if m.Size <= 0 || m.Size > MaxReleaseBinary {
			return nil, &ValidationError{"size", fmt.Sprintf("%d: must be 1..%d", m.Size, MaxReleaseBinary)}
		}
		if m.BinarySignature == "" || len(m.BinarySignature) > maxSignatureBytes {
			return nil, &ValidationError{"binary_signature", "missing or too long"}
		}
	case ManifestConfig:
		if err := ValidateStoreID(m.Store); err != nil {
			return nil, &ValidationError{"store", err.Error()}
		}
		if m.ConfigVersion == 0 {
			return nil, &ValidationError{"config_version", "missing"}
		}
		if len(m.Overrides) > MaxOverridesBytes {
			return nil, &ValidationError{"overrides", fmt.Sprintf("%d bytes, the limit is %d", len(m.Overrides), MaxOverridesBytes)}
		}
	default:
		return nil, &ValidationError{"kind", fmt.Sprintf("unknown manifest kind %q", m.Kind)}
	}
	return &m, nil
}

// Command types for releases and configuration (CommandsTopic, see Command).
const (
	// CommandUpdate offers the agent a release: Command.Manifest is a signed binary manifest
	// and Command.URL the hub path to download the binary from. The agent decides (it verifies
	// and may refuse) and reports in Status.Update.
	CommandUpdate = "update"
	// CommandConfig pushes signed configuration overrides (a config manifest). The agent
	// validates them before use and reports in Status.Config.
	CommandConfig = "config"
)

// Update states reported in Status.Update.
const (
	UpdateDownloading = "downloading"
	UpdateVerifying   = "verifying"
	UpdateTrial       = "trial"       // swapped; the new binary is proving itself
	UpdateHealthy     = "healthy"     // the new binary passed its health check: done
	UpdateRolledBack  = "rolled_back" // the new binary failed; the previous one runs again
	UpdateRefused     = "refused"     // not applied: signature, expiry, os/arch, downgrade, …
	UpdateFailed      = "failed"      // not applied: download or disk error (may be retried)
)

// UpdateReport is the agent's account of the last release it was offered.
type UpdateReport struct {
	CommandID string    `json:"command_id,omitempty"`
	Version   string    `json:"version"` // the release's version
	From      string    `json:"from,omitempty"`
	State     string    `json:"state"`
	Detail    string    `json:"detail,omitempty"` // the reason, in words, for refused/failed/rolled_back
	At        time.Time `json:"at"`
}

// Config states reported in Status.Config.
const (
	ConfigApplied    = "applied"
	ConfigRefused    = "refused"
	ConfigRolledBack = "rolled_back"
)

// ConfigReport is the agent's account of the last configuration push.
type ConfigReport struct {
	CommandID string    `json:"command_id,omitempty"`
	Version   uint64    `json:"version"` // the ConfigVersion of that push
	Active    uint64    `json:"active"`  // the ConfigVersion running now (0: the local file only)
	State     string    `json:"state"`
	Detail    string    `json:"detail,omitempty"`
	At        time.Time `json:"at"`
}

// Semver is a parsed semantic version (major.minor.patch with an optional pre-release).
type Semver struct {
	Major, Minor, Patch int
	Pre                 string
}

var reSemver = regexp.MustCompile(`^v?(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})(?:-([0-9A-Za-z.-]{1,64}))?(?:\+[0-9A-Za-z.-]{1,64})?$`)

// ErrNotSemver marks a version string that is not a semantic version (a development build).
var ErrNotSemver = errors.New("not a semantic version")

// ParseSemver parses "v1.2.3", "1.2.3-rc.1" or "v1.2.3+build".
func ParseSemver(s string) (Semver, error) {
	m := reSemver.FindStringSubmatch(s)
	if m == nil {
		return Semver{}, fmt.Errorf("%q: %w (want v1.2.3)", s, ErrNotSemver)
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	c, _ := strconv.Atoi(m[3])
	return Semver{a, b, c, m[4]}, nil
}

// Compare returns -1, 0 or 1. A pre-release sorts before its release; pre-releases compare
// as strings.
func (v Semver) Compare(o Semver) int {
	for _, d := range [][2]int{{v.Major, o.Major}, {v.Minor, o.Minor}, {v.Patch, o.Patch}} {
		if d[0] != d[1] {
			if d[0] < d[1] {
				return -1
			}
			return 1
		}
	}
	switch {
	case v.Pre == o.Pre:
		return 0
	case v.Pre == "":
		return 1
	case o.Pre == "":
		return -1
	case v.Pre < o.Pre:
		return -1
	default:
		return 1
	}
}

func (v Semver) String() string {
	s := fmt.Sprintf("v%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	return s
}

// CompareVersions compares two semantic version strings; an unparseable one is an error.
func CompareVersions(a, b string) (int, error) {
	va, err := ParseSemver(a)
	if err != nil {
		return 0, err
	}
	vb, err := ParseSemver(b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}

// ErrBadSignature marks a manifest whose signature no trusted key verifies.
var ErrBadSignature = errors.New("signature not made by a trusted key")

// SignManifest marshals m and signs its bytes with key; the trusted comment names the kind,
// version or store, for people reading the signature.
func SignManifest(key minisign.PrivateKey, m *Manifest) (SignedManifest, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return SignedManifest{}, fmt.Errorf("manifest: %w", err)
	}
	if _, err := ParseManifest(body); err != nil {
		return SignedManifest{}, err
	}
	what := m.Version
	if m.Kind == ManifestConfig {
		what = fmt.Sprintf("%s config %d", m.Store, m.ConfigVersion)
	}
	sig := minisign.SignWithComments(key, body, fmt.Sprintf("lanebridge %s %s", m.Kind, what), "lanebridge manifest")
	return SignedManifest{Body: string(body), Signature: string(sig)}, nil
}

// VerifyManifest checks sm's signature against the trusted keys and only then parses it.
func VerifyManifest(trusted []minisign.PublicKey, sm SignedManifest) (*Manifest, error) {
	if len(sm.Body) > MaxManifestBytes || len(sm.Signature) > maxSignatureBytes {
		return nil, &ValidationError{"manifest", "too large"}
	}
	ok := false
	for _, k := range trusted {
		if minisign.Verify(k, []byte(sm.Body), []byte(sm.Signature)) {
			ok = true
			break
		}
	}
	if !ok {
		return nil, fmt.Errorf("manifest: %w (%d keys trusted)", ErrBadSignature, len(trusted))
	}
	return ParseManifest([]byte(sm.Body))
}
