package channels

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestConnectorsConfig(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, nil, 0o600)
	good := `
- {channel: web, kind: vendure, url: "http://127.0.0.1:3000", username: superadmin, password_file: SECRET, coalesce: 1s}
- {channel: shop2, kind: shopify, url: "https://x.myshopify.com", token_file: SECRET, location: "7001", rate_limit: 1.5}
- {channel: amazon, kind: amazon, url: "https://sellingpartnerapi-eu.amazon.com", token_file: SECRET, seller_id: A1, marketplace_id: M1}
`
	channels := []string{"web", "shop2", "amazon"}
	cases := []struct {
		name, yaml, want string // want: "" = valid, else a substring of the error
	}{
		{"all three kinds", good, ""},
		{"unknown kind", `[{channel: web, kind: ebay, url: "http://h"}]`, `connectors[0].kind: "ebay": use vendure, shopify or amazon`},
		{"no channel", `[{kind: vendure, url: "http://h"}]`, "connectors[0].channel: missing"},
		{"not an availability channel", `[{channel: nope, kind: vendure, url: "http://h", username: u, password_file: SECRET}]`, `connectors[0].channel: "nope" is not an availability channel`},
		{"twice", `[{channel: web, kind: vendure, url: "http://h", username: u, password_file: SECRET}, {channel: web, kind: vendure, url: "http://h"}]`, "connectors[1].channel: channel \"web\" has two connectors"},
		{"bad url", `[{channel: web, kind: vendure, url: "h:99"}]`, "connectors[0].url"},
		{"vendure without user", `[{channel: web, kind: vendure, url: "http://h", password_file: SECRET}]`, "connectors[0].username: missing"},
		{"missing password file", `[{channel: web, kind: vendure, url: "http://h", username: u, password_file: /nonexistent/pw}]`, "connectors[0].password_file: open /nonexistent/pw"},
		{"empty token file", `[{channel: shop2, kind: shopify, url: "https://h", location: "1", token_file: EMPTY}]`, "connectors[0].token_file: " + empty + " is empty"},
		{"shopify without location", `[{channel: shop2, kind: shopify, url: "https://h", token_file: SECRET}]`, "connectors[0].location"},
		{"shopify unknown api", `[{channel: shop2, kind: shopify, url: "https://h", location: "1", token_file: SECRET, api: soap}]`, `connectors[0].api: "soap": use graphql`},
		{"shopify batch too big", `[{channel: shop2, kind: shopify, url: "https://h", location: "1", token_file: SECRET, batch: 251}]`, "connectors[0].batch: 251: use 1..250"},
		{"negative batch", `[{channel: web, kind: vendure, url: "http://h", batch: -1}]`, "connectors[0].batch: -1 is negative"},
		{"amazon unknown api", `[{channel: amazon, kind: amazon, url: "https://h", token_file: SECRET, seller_id: A, marketplace_id: M, api: sqs}]`, `connectors[0].api: "sqs": use listings`},
		{"amazon without seller", `[{channel: amazon, kind: amazon, url: "https://h", token_file: SECRET}]`, "connectors[0].seller_id"},
		{"negative rate", `[{channel: web, kind: vendure, url: "http://h", rate_limit: -1}]`, "connectors[0].rate_limit: -1 is negative"},
		{"coalesce too long", `[{channel: web, kind: vendure, url: "http://h", coalesce: 2h}]`, "connectors[0].coalesce: 2h0m0s: use 0s..1m"},
	}
	for _, tc := range cases {
		var list []ConnectorConfig
		y := strings.ReplaceAll(strings.ReplaceAll(tc.yaml, "SECRET", secretFile), "EMPTY", empty)
		if err := yaml.Unmarshal([]byte(y), &list); err != nil {
			t.Fatalf("%s: yaml: %v", tc.name, err)
		}
		err := ValidateConnectors(list, channels)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: ValidateConnectors = %v, want valid", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: ValidateConnectors = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	var list []ConnectorConfig
	_ = yaml.Unmarshal([]byte(strings.ReplaceAll(good, "SECRET", secretFile)), &list)
	conns, opts, err := Connectors(list, nil)
	if err != nil || len(conns) != 3 {
		t.Fatalf("Connectors: %d, %v", len(conns), err)
	}
	p, err := NewConfigured(list, channels, Options{Source: newFakeSource(), State: newMemState()})
	if err != nil || len(p.chans) != 3 || p.chans[1].bucket.rate != 1.5 {
		t.Fatalf("NewConfigured: %v, %v", p, err)
	}
	if _, err := NewConfigured(list, []string{"web"}, Options{Source: newFakeSource(), State: newMemState()}); err == nil {
		t.Fatal("NewConfigured with a connector for an unknown channel succeeded")
	}
	if conns[0].Name() != "web" || opts[0].Coalesce.String() != "1s" || conns[1].Limits().Rate != 1.5 || conns[2].Limits().Rate != 4.5 {
		t.Fatalf("built %s coalesce %s, shopify rate %v, amazon rate %v", conns[0].Name(), opts[0].Coalesce, conns[1].Limits().Rate, conns[2].Limits().Rate)
	}
}
