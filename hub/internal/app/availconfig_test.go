package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigAvailability: the availability: section is read from hub.yaml (the example in the
// README's shape) and a bad entry or an unknown key is refused with an error naming it.
func TestConfigAvailability(t *testing.T) {
	good := `availability:
  channels:
    - name: webshop
      stores: ["*"]
      safety_stock: {default: "1", sku: {X: "2"}}
    - name: marketplace
      stores: [S001, S002]
  safety_stock: {category: {mugs: "1"}}
  categories: {mugs: ["MUG-*"]}
  reservations: {expire_after: 72h}
  drift: {threshold: "2", for: 10m}
`
	for _, tc := range []struct{ yaml, wantErr string }{
		{good, ""},
		{strings.Replace(good, "name: webshop", "name: Web Shop", 1), "availability.channels[0].name"},
		{strings.Replace(good, "stores: [S001, S002]", "stores: []", 1), "availability.channels[1].stores"},
		{strings.Replace(good, `mugs: "1"`, `mugs: "many"`, 1), "availability.safety_stock.category.mugs"},
		{strings.Replace(good, "expire_after: 72h", "expire_afer: 72h", 1), "expire_afer"},
	} {
		p := filepath.Join(t.TempDir(), "hub.yaml")
		if err := os.WriteFile(p, []byte("data_dir: "+t.TempDir()+"\n"+tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := loadConfig(p)
		if err == nil {
			err = c.validate()
		}
		if tc.wantErr == "" {
			if err != nil || len(c.Availability.Channels) != 2 || c.Availability.Reservations.ExpireAfter != 72*time.Hour {
				t.Fatalf("good config: %+v, %v", c.Availability, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err %v, want one naming it", tc.wantErr, err)
		}
	}
}
