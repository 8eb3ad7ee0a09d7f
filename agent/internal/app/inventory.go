package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/config"
	"github.com/lanebridge/lanebridge/agent/internal/inventory"
	"github.com/lanebridge/lanebridge/agent/internal/replay"
	"github.com/lanebridge/lanebridge/agent/internal/spool"
)

func inventoryPath(cfg *config.Config) string { return filepath.Join(cfg.DataDir, "inventory.db") }
func commandsPath(cfg *config.Config) string  { return filepath.Join(cfg.DataDir, "commands.json") }

// openDownlink opens what handles the hub's down/inventory and down/commands messages: the
// item master and the command executor. It runs after the spool is open and before the uplink
// is built (the uplink hands them messages); the returned func closes the item master.
func (a *agent) openDownlink() (func(), error) {
	db, err := inventory.Open(inventoryPath(a.cfg), a.log)
	if err != nil {
		return nil, fmt.Errorf("open inventory: %w", err)
	}
	var plu *inventory.PLUFile
	if c := a.cfg.Inventory; c.PLUFile != "" {
		plu = &inventory.PLUFile{Path: c.PLUFile, Format: c.PLUFormat, Columns: c.PLUColumns, Header: c.PLUHeader}
		if c.PLUDelimiter != "" {
			plu.Comma = []rune(c.PLUDelimiter)[0]
		}
	}
	a.inv, err = inventory.New(db, a.sp, inventory.Options{PLU: plu, OnChange: a.requestStatus, Logger: a.log})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("inventory: %w", err)
	}
	a.rep, err = replay.New(a.sp, agentPublisher{a}, replay.Options{
		Store: a.cfg.Store, BatchSize: a.cfg.Hub.BatchSize, ResultsFile: commandsPath(a.cfg),
		OnResult: a.requestStatus, Logger: a.log,
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("replay: %w", err)
	}
	return func() { db.Close() }, nil
}

// requestStatus asks the uplink for a prompt status; called from the inventory and replay
// goroutines, which start after a.fwd is set.
func (a *agent) requestStatus() {
	if a.fwd != nil {
		a.fwd.RequestStatus()
	}
}

// agentPublisher publishes replay batches through the agent's uplink.
type agentPublisher struct{ a *agent }

func (p agentPublisher) PublishRecords(ctx context.Context, payload []byte) error {
	return p.a.fwd.PublishRecords(ctx, payload)
}

func (a *agent) handleInventory(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if a.inv == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"error": "inventory is not available"})
		return
	}
	v, err := a.inv.Lookup(r.PathValue("sku"))
	switch {
	case err == nil:
		json.NewEncoder(w).Encode(v)
		return
	case errors.Is(err, inventory.ErrUnknownSKU):
		w.WriteHeader(http.StatusNotFound)
	case errors.Is(err, inventory.ErrNoItemMaster):
		w.WriteHeader(http.StatusServiceUnavailable)
	default:
		w.WriteHeader(http.StatusInternalServerError)
	}
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// cmdInventory looks up one SKU: from the running agent's endpoint when it holds the files,
// otherwise from the files opened read-only.
func cmdInventory(args []string, stdout io.Writer) error {
	fset := flag.NewFlagSet("inventory", flag.ContinueOnError)
	path := fset.String("config", "agent.yaml", "agent configuration file")
	asJSON := fset.Bool("json", false, "print the lookup as JSON")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() < 1 {
		return errors.New("usage: lanebridge-agent inventory SKU --config agent.yaml [--json]")
	}
	sku := fset.Arg(0)
	if err := fset.Parse(fset.Args()[1:]); err != nil { // flags after the SKU
		return err
	}
	if fset.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: give one SKU", fset.Arg(0))
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	var (
		v      inventory.View
		source string
	)
	db, err := inventory.OpenReadOnly(inventoryPath(cfg))
	switch {
	case err == nil:
		defer db.Close()
		var j inventory.Journal
		sp, serr := spool.OpenReadOnly(spoolPath(cfg), spool.Options{Store: cfg.Store})
		switch {
		case serr == nil:
			defer sp.Close()
			j = sp
		case errors.Is(serr, fs.ErrNotExist):
		default:
			return fmt.Errorf("read spool for the local overlay: %w", serr)
		}
		if v, err = inventory.LookupOnce(db, j, sku); err != nil {
			return err
		}
		source = "files (agent not running)"
	case errors.Is(err, inventory.ErrLocked) && cfg.Listen != "off":
		c := http.Client{Timeout: 5 * time.Second}
		resp, herr := c.Get("http://" + cfg.Listen + "/inventory/" + url.PathEscape(sku))
		if herr != nil {
			return fmt.Errorf("the agent holds the inventory but its local endpoint %s does not answer: %w", cfg.Listen, herr)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			var e struct {
				Error string `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&e)
			return fmt.Errorf("running agent: %s: %s", resp.Status, e.Error)
		}
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			return fmt.Errorf("read lookup from the running agent: %w", err)
		}
		source = "running agent"
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no item master yet: the agent has not received inventory from the hub (%s)", inventoryPath(cfg))
	default:
		return fmt.Errorf("read inventory: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	fmt.Fprintf(stdout, "sku:          %s\n", v.SKU)
	fmt.Fprintf(stdout, "description:  %s\n", v.Description)
	fmt.Fprintf(stdout, "price:        %d\n", v.Price)
	if v.Status != "" {
		fmt.Fprintf(stdout, "status:       %s\n", v.Status)
	}
	fmt.Fprintf(stdout, "on hand:      %s\n", v.OnHand)
	fmt.Fprintf(stdout, "available:    %s (hub %s minus %s sold here since seq %d)\n", v.Available, v.HubAvailable, v.LocalSold, v.AppliedThrough)
	fmt.Fprintf(stdout, "version:      %d\n", v.Version)
	fmt.Fprintf(stdout, "source:       %s\n", source)
	return nil
}
