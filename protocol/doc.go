// Package protocol is the wire contract between the Lanebridge store agent and the hub.
//
// # Basics
//
// Version 1 of the protocol carries canonical POS records (sales, returns, voids, no-sales,
// paid-in/out, X and Z reports) from an agent to the hub over MQTT, in batches published with
// QoS 1 on [RecordsTopic]. The hub answers on [AcksTopic] with cumulative acknowledgements
// ("applied through seq N of epoch E") that it publishes only after its own durable commit, and
// with "resend from seq M" when it sees a gap. Agents publish a retained [Status] on
// [StatusTopic] with a Will that says they are offline.
//
// Money is always an integer number of minor units of the record's currency (cents; ISO 4217
// exponents, [MinorDigits]: a JPY or KRW amount is whole yen or won); quantities are exact decimal
// strings. Decoders ignore unknown fields, so a newer peer may add fields freely; a breaking
// change bumps [Version] and the major version that is part of every topic.
//
// # Identity of a record
//
// The agent assigns each captured record a store-wide, gap-free sequence number (Seq) inside
// the same bbolt transaction that stores it, and stamps the spool's Epoch, a random id minted
// when the spool file was created. (store, epoch, seq) identifies a record forever. Hash is the
// SHA-256 of the record's canonical form (see [Record.Canonical]); the hub treats the same key
// with a different hash as an alarm, never an overwrite.
//
// # Encoding a batch from stored records
//
// The agent keeps each record as its JSON. [AppendBatch] writes a Batch around those bytes
// without decoding them ([BatchHeader] holds store, epoch, and for a replay Replay and
// CommandID); the result is byte for byte what json.Marshal of the Batch writes, and what
// [DecodeBatch] reads.
//
// # Receipt numbers
//
// Receipts are strings; for gap detection and for the receipt ranges of [CommandReplay] a
// receipt has the number [ReceiptNumber] gives: all ASCII digits, at most 18 ("000123" is
// 123), others have none. [ReceiptGaps] turns the numbers seen for a terminal and day into
// the inclusive ranges missing between the lowest and the highest. Hub (close, day summary)
// and agent (which records a replay command matches) use these two, so they agree on what a
// gap is.
//
// # Caveats
//
//   - An MQTT PUBACK from a broker is not an acknowledgement: only an [Ack] from the hub lets a
//     record leave the agent's outbox.
//   - Store ids are path segments of topics: they may not contain '/', '+', '#' or NUL
//     ([ValidateStoreID]).
//   - Hash covers the fields this version knows. A new field on Record changes the canonical form
//     for a newer sender but not for an older receiver, so adding a Record field is a breaking
//     change (bump Version); fields may be added freely to Batch, Ack, Status and downlink
//     messages.
//   - Limits (2026-12-01, within version 1): money within ±[MaxMoney] minor units, seq at most
//     [MaxSeq], no NUL in record text, records valid UTF-8; the hub reads at most
//     [MaxStatusList] entries of each status list and [MaxText] bytes of each text
//     ([Status.Bound]). A batch that fails validation is refused for good with [Ack.Rejected].
//   - Additions within version 1: [Status.SpoolUsedBytes] and [Status.SpoolMaxBytes]
//     (2026-12-01; omitted by older agents, whose spool use the hub then does not alert on).
//   - Version history: 1 (2026-11-26) first version.
package protocol
