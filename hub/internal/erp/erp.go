// Package erp is the hub's boundary to the ERP, the system of record for money and stock.
//
// # Basics
//
// A [Connector] posts one POS transaction (a sale or a return) under its business key
// store|terminal|business_date|receipt|kind and finds an earlier posting by that key. The hub's
// outbox (package posting) calls Find before Post, so a posting that reached the ERP just before
// the hub crashed is found, not posted again. A [StockSource] pulls on-hand quantities and the
// item master for the inventory push.
//
// Implementations: package tryton (a Tryton ERP over JSON-RPC) and package flatfile (CSV files
// in an outbound folder, inventory and price files from an inbound folder).
//
// # Errors
//
// Post returns an error wrapping [ErrRejected] when the ERP refuses the document for a reason a
// retry cannot fix (unknown SKU or store, totals that do not add up, a business rule); the
// outbox turns it into an erp_rejected exception with the ERP's message. Every other error is
// retryable: the outbox backs off and tries again.
//
// # Concurrency
//
// Implementations are safe for concurrent use, but Post and Find are not atomic together: the
// outbox guarantees that one business key is posted by one caller at a time (a lease per key).
package erp

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/lanebridge/lanebridge/protocol"
)

// ErrRejected marks a permanent rejection by the ERP.
var ErrRejected = errors.New("rejected by the ERP")

// RejectedError is a permanent rejection with the ERP's message.
type RejectedError struct {
	Msg string
	Err error // the underlying error, if any
}

func (e *RejectedError) Error() string { return "rejected by the ERP: " + e.Msg }

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// Unwrap returns the underlying error.
func (e *RejectedError) Unwrap() error { return e.Err }

// Reject wraps err as a permanent rejection.
func Reject(err error) error { return &RejectedError{Msg: err.Error(), Err: err} }

// Permanent reports whether err is a permanent rejection.
func Permanent(err error) bool { return errors.Is(err, ErrRejected) }

// Posting is one transaction to post. The connector owns neither field; it must not modify
// Record.
type Posting struct {
	Key    string // store|terminal|business_date|receipt|kind
	Record protocol.Record
}

// Connector posts to an ERP.
type Connector interface {
	// Post records p in the ERP and returns the ERP's reference for it. Posting a key that the
	// ERP already holds returns that posting's reference (connectors are idempotent where the
	// ERP allows; the outbox does not rely on it).
	Post(ctx context.Context, p Posting) (ref string, err error)
	// Find reports whether the ERP holds a complete posting with key.
	Find(ctx context.Context, key string) (ref string, found bool, err error)
}

// BatchPoster is implemented by connectors that post several postings as one document or file
// (flat files). refs[i] is the reference of ps[i]; an error means none was posted.
type BatchPoster interface {
	PostBatch(ctx context.Context, ps []Posting) (refs []string, err error)
}

// Item is one entry of the ERP's item master.
type Item struct {
	SKU         string
	Description string
	Price       int64 // minor units
	TaxCode     string
	Status      string // protocol.ItemActive, ItemInactive or ItemDeleted
}

// Update is what a StockSource pulled.
type Update struct {
	// OnHand per store: each listed store's map replaces what was known of that store.
	OnHand map[string]map[string]string
	// Items is the complete item master, or nil when unchanged.
	Items []Item
	// Commit, if not nil, is called once the caller has durably applied the update (the flat-file
	// source moves the files it read to processed/ then, so each file is applied once).
	Commit func() error
}

// StockSource pulls stock and the item master from the ERP.
type StockSource interface {
	Pull(ctx context.Context, stores []string) (Update, error)
}

// Lines is a posting's item lines as an ERP sees them: voided lines dropped, and the
// transaction's discounts as one line without SKU (quantity -1, unit price the discount).
// Net is what the ERP should compute as the untaxed total: Σ amounts − discounts.
type Line struct {
	SKU         string
	Description string
	Quantity    string
	UnitPrice   int64 // minor units, never negative (a return negates Quantity)
	Amount      int64
	Discount    bool // the transaction's discounts (no SKU)
}

// NetLines returns the lines of r to post and their net (untaxed) total.
func NetLines(r *protocol.Record) ([]Line, int64, error) {
	var out []Line
	var net int64
	for i, l := range r.Lines {
		if l.Voided {
			continue
		}
		up := l.UnitPrice
		q := l.Quantity
		if up < 0 {
			up = -up
			neg, err := negate(q)
			if err != nil {
				return nil, 0, fmt.Errorf("line %d: %w", i+1, err)
			}
			q = neg
		}
		out = append(out, Line{SKU: l.SKU, Description: l.Description, Quantity: q, UnitPrice: up, Amount: l.Amount})
		net += l.Amount
	}
	var disc int64
	for _, d := range r.Discounts {
		disc += d.Amount
	}
	if disc != 0 {
		desc := "Discount"
		if len(r.Discounts) == 1 && r.Discounts[0].Description != "" {
			desc = "Discount: " + r.Discounts[0].Description
		}
		q, up := "-1", disc
		if disc < 0 {
			q, up = "1", -disc
		}
		out = append(out, Line{Description: desc, Quantity: q, UnitPrice: up, Amount: -disc, Discount: true})
		net -= disc
	}
	return out, net, nil
}

func negate(q string) (string, error) {
	if !protocol.ValidQuantity(q) {
		return "", fmt.Errorf("quantity %q is not an exact decimal", q)
	}
	if q[0] == '-' {
		return q[1:], nil
	}
	if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
		return q, nil
	}
	return "-" + q, nil
}
