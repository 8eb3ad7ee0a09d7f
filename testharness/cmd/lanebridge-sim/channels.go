package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lanebridge/lanebridge/testharness/channelsim"
)

// runChannel serves a sales-channel API SIMULATOR (testharness/channelsim) until interrupted.
func runChannel(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("channel", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", "shopify", "shopify or amazon (simulators of their APIs)")
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to serve on")
	skus := fs.String("skus", "", "comma-separated SKUs the channel lists")
	token := fs.String("token", "", "access token the simulator accepts")
	seller := fs.String("seller", "A1SELLER", "amazon: seller id")
	market := fs.String("marketplace", "A1PHAD5NF", "amazon: marketplace id")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	list := strings.FieldsFunc(*skus, func(r rune) bool { return r == ',' })
	if *token == "" || len(list) == 0 {
		fmt.Fprintln(stderr, "lanebridge-sim channel: --token and --skus are required")
		return 2
	}
	var sim channelsim.Inspectable
	switch *kind {
	case "shopify":
		sim = channelsim.NewShopify(*token, list...)
	case "amazon":
		sim = channelsim.NewAmazon(*token, *seller, *market, list...)
	default:
		fmt.Fprintf(stderr, "lanebridge-sim channel: --kind %q: use shopify or amazon\n", *kind)
		return 2
	}
	host, _, err := net.SplitHostPort(*listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(stderr, "lanebridge-sim channel: --listen %q: give a loopback address (127.0.0.1:PORT)\n", *listen)
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "lanebridge-sim channel: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "SIMULATOR of the %s API listening on http://%s\n", *kind, ln.Addr())
	srv := &http.Server{Handler: channelsim.WithInspect(sim), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()) }()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "lanebridge-sim channel: %v\n", err)
		return 1
	}
	return 0
}
