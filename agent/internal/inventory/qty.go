package inventory

import "github.com/lanebridge/lanebridge/protocol"

// Qty is the protocol's exact decimal quantity (shared with the hub, so figures agree).
type Qty = protocol.Qty

// ParseQty parses an exact decimal quantity string.
func ParseQty(s string) (Qty, error) { return protocol.ParseQty(s) }

// ErrOverflow is returned when a sum of quantities leaves the range of a Qty.
var ErrOverflow = protocol.ErrQtyOverflow
