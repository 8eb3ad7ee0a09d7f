// Command lanebridge-hub is the Lanebridge hub: it ingests store records over MQTT, stores them
// idempotently and serves the operators' API and dashboard.
package main

import (
	"os"

	"github.com/lanebridge/lanebridge/hub/internal/app"
)

func main() { os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr)) }
