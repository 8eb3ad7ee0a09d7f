// Command lanebridge-agent is the Lanebridge store agent: it captures POS transactions from
// legacy terminals, commits them durably and forwards them to the hub.
package main

import (
	"os"

	"github.com/lanebridge/lanebridge/agent/internal/app"
)

func main() { os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr)) }
