// Package tryton is the hub's client for the Tryton ERP (6.0, as packaged by
// Debian 12), spoken to over Tryton's JSON-RPC API.
//
// # Basics
//
// [Dial] logs in with common.db.login and sends every later call with the
// header "Authorization: Session base64(login:user_id:session)" and the
// user's preferences (company) as context; an expired session is renewed once
// per call. [Client.Call] reaches any model method; the rest of the API is
// what the hub needs:
//
//   - [Client.PostSale] records one POS transaction, a sale or a return;
//   - [Client.FindPosting] finds an earlier posting by its business key;
//   - [Client.OnHand] reads stock per SKU in one store's warehouse;
//   - [Client.Prices] reads list prices per SKU.
//
// # Why sales are posted as sale.sale documents
//
// Each receipt becomes one sale.sale with one line per item, our business key
// (store|terminal|business_date|receipt|kind) in its reference field, the
// business date as sale date, and the store's warehouse. Processing the sale
// lets Tryton itself create the customer shipment (or, for negative lines,
// the customer return shipment) and the stock moves, which PostSale then
// completes. We chose this over writing stock moves and account moves
// directly because:
//   - it is the document a retailer and Tryton's own reports recognise
//     (sales by product, by warehouse, by date), with lines to audit;
//   - Tryton keeps moves, shipments and sale consistent, and its workflow is
//     the validation: a posting Tryton rejects carries Tryton's own message;
//   - one document per key makes FindPosting a single indexed search, and an
//     interrupted posting is a document in an intermediate state that
//     PostSale resumes, never a half-written set of moves;
//   - returns are what Tryton does for them: a sale with negative quantities.
//
// Sales use the "manual" invoice method: a receipt was paid at the till, and
// one customer invoice per receipt to an anonymous walk-in customer is noise
// in the ledger. Revenue and tenders are to be booked per store and business
// day (from the Z report) as one account move; the seed already creates a
// chart of accounts for that.
//
// # Caveats
//
//   - Idempotency holds for sequential calls. Two concurrent PostSale calls
//     with the same key may both create a sale (Tryton has no unique
//     constraint on reference); the hub's outbox must serialise per key.
//     FindPosting reports such duplicates with ErrDuplicatePosting.
//   - Stock availability is not checked: the goods already left the store,
//     so shipments are forced (or, with a shop floor that is storage and
//     output at once, packed directly). Tryton's stock may go negative.
//   - Amounts are minor units with MinorDigits (2) decimals (a record in a currency with other
//     minor units, JPY or KRW, is rejected as permanent: an exception, never a value off by 100×); taxes are not
//     posted (products carry no taxes in the seeded database).
//   - Quantities are floats in Tryton 6.0; a quantity is sent as the nearest
//     float of its decimal string.
//   - A posting whose total does not match Tryton's is deleted while still a
//     draft and PostSale returns ErrTotalMismatch (permanent).
package tryton
