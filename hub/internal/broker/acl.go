package broker

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/lanebridge/lanebridge/protocol"
)

// AgentClientIDPrefix: a store's client must use client id "{store}" or
// AgentClientIDPrefix+"{store}" (the agent's default). No store id may start with it.
const AgentClientIDPrefix = "lanebridge-agent-"

// authTimeout bounds one call to Authenticator.CheckStore.
const authTimeout = 10 * time.Second

// mayPublish reports whether the client of store may publish to topic. Only the store's own
// up/records and up/status topics are allowed, compared as whole strings.
func mayPublish(store, topic string) bool {
	if protocol.ValidateStoreID(store) != nil {
		return false
	}
	return topic == protocol.RecordsTopic(store) || topic == protocol.StatusTopic(store)
}

// mayRead reports whether the client of store may subscribe to filter, or receive a message
// published to the topic filter. mochi calls the same ACL check with a subscription filter
// (on SUBSCRIBE) and with a topic name (on delivery); a topic name can never contain '+', so
// one whitelist serves both. Shared subscriptions, '#', $SYS and other stores never match.
func mayRead(store, filter string) bool {
	if protocol.ValidateStoreID(store) != nil {
		return false
	}
	switch filter {
	case protocol.AcksTopic(store),
		protocol.InventoryTopic(store),
		protocol.CommandsTopic(store),
		protocol.TopicRoot + "/" + store + "/down/+":
		return true
	}
	return false
}

// aclHook is the broker's only auth hook: it denies everything it does not explicitly allow.
// mochi asks every hook that provides OnConnectAuthenticate/OnACLCheck and allows when any of
// them says yes, so no other auth hook may ever be added to the server.
type aclHook struct {
	mqtt.HookBase
	auth     Authenticator
	log      *slog.Logger
	ctx      context.Context // cancelled by Broker.Close; bounds Authenticator calls
	throttle *throttle       // nil: no login back-off
	sessions sessions
}

func (h *aclHook) ID() string { return "lanebridge-acl" }

func (h *aclHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnSessionEstablished, mqtt.OnDisconnect:
		return true
	}
	return false
}

// OnSessionEstablished tracks a connected store client for credential rechecks.
func (h *aclHook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	if !cl.Net.Inline {
		h.sessions.add(cl, session{string(pk.Connect.Username), string(pk.Connect.Password)})
	}
}

// OnDisconnect forgets a client.
func (h *aclHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) { h.sessions.remove(cl) }

// errDenied is what checkConnect returns for a refusal that is not an Authenticator failure.
var errDenied = errors.New("denied")

// OnConnectAuthenticate accepts a connection only when the username is a valid store id, the
// client id is that store id (optionally with AgentClientIDPrefix), the Will (if any) targets the store's own status topic and
// the Authenticator accepts the password.
func (h *aclHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if cl.Net.Inline {
		return true
	}
	store := string(pk.Connect.Username)
	log := h.log.With(slog.String("store", store), slog.String("client", pk.Connect.ClientIdentifier), slog.String("remote", cl.Net.Remote))
	addr, now := host(cl.Net.Remote), time.Now()
	if closed, first, f := h.throttle.closed(addr, now); closed {
		if first {
			log.Warn("mqtt logins from this address throttled after repeated failures; refusing without checking until the window ends",
				slog.Int("failures", f.n), slog.Time("until", f.until))
		}
		return false
	}
	if reason, err := h.checkConnect(store, pk); err != nil {
		if errors.Is(err, errDenied) {
			h.throttle.fail(addr, now)
			log.Warn("mqtt connection refused", slog.String("reason", reason))
		} else {
			log.Error("check store credentials failed; connection refused", slog.Any("err", err))
		}
		return false
	}
	h.throttle.ok(addr)
	log.Info("store connected", slog.Bool("clean", pk.Connect.Clean), slog.Int("protocol", int(pk.ProtocolVersion)))
	return true
}

func (h *aclHook) checkConnect(store string, pk packets.Packet) (reason string, err error) {
	if err := protocol.ValidateStoreID(store); err != nil {
		return "username is not a valid store id", errDenied
	}
	if store == mqtt.InlineClientId {
		// Its session would replace the broker's own inline client.
		return "store id is reserved", errDenied
	}
	if strings.HasPrefix(store, AgentClientIDPrefix) {
		// Such a store's own id could equal another store's agent client id.
		return "store id starts with the agent client id prefix", errDenied
	}
	// The client id is the session key: a store using another store's id would take over
	// that session, including the messages queued for it, without any ACL check.
	if id := pk.Connect.ClientIdentifier; id != store && id != AgentClientIDPrefix+store {
		return "client id must be the store id or " + AgentClientIDPrefix + "{store id}", errDenied
	}
	if pk.Connect.WillFlag && pk.Connect.WillTopic != protocol.StatusTopic(store) {
		// mochi publishes Wills without a write ACL check (mochi-mqtt/server issue 503).
		return "will topic is not the store's own status topic", errDenied
	}
	if !pk.Connect.PasswordFlag || len(pk.Connect.Password) == 0 {
		return "no password", errDenied
	}
	ctx, cancel := context.WithTimeout(h.ctx, authTimeout)
	defer cancel()
	ok, err := h.auth.CheckStore(ctx, store, string(pk.Connect.Password))
	if err != nil {
		return "", err
	}
	if !ok {
		return "wrong password or unknown store", errDenied
	}
	return "", nil
}

// OnACLCheck allows a store's client exactly its own topics; the inline client (the hub)
// bypasses this check in mochi and is allowed here as well.
func (h *aclHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	store := string(cl.Properties.Username)
	var ok bool
	if write {
		ok = mayPublish(store, topic)
	} else {
		ok = mayRead(store, topic)
	}
	if !ok {
		h.log.Warn("mqtt topic denied", slog.String("store", store), slog.String("topic", topic), slog.Bool("write", write))
	}
	return ok
}

// OnPublish drops the retain flag on record batches: the hub stores batches itself, and a
// retained ~1 MiB batch per store would only cost memory and be replayed to new subscribers.
func (h *aclHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if !cl.Net.Inline && pk.FixedHeader.Retain && strings.HasSuffix(pk.TopicName, "/"+protocol.SuffixRecords) {
		pk.FixedHeader.Retain = false
	}
	return pk, nil
}
