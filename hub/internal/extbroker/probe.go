package extbroker

import (
	"context"
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// ProbeResult is what Probe found open on a broker; the zero value is a locked-down broker.
type ProbeResult struct {
	Anonymous bool // a client without credentials connected
	Wildcard  bool // an account with no rights, subscribed to '#', received another account's message
}

// probeTimeout bounds each of Probe's connections; canaryWait is how long the probe account's
// '#' subscription is given to receive the canary.
const (
	probeTimeout = 10 * time.Second
	canaryWait   = 3 * time.Second
)

// CanaryTopic is where Probe publishes, as the hub, a message the probe account may not read
// (another account's down topic).
const CanaryTopic = "lanebridge/v1/lanebridge-canary/down/probe"

// Probe checks that the broker at url refuses anonymous clients and does not deliver other
// accounts' messages to user (an account without rights in its ACL: the probe account `export
// mosquitto` creates) subscribed to '#'. Mosquitto grants such a subscription and filters on
// delivery, so Probe publishes a canary to CanaryTopic as the hub (hubUser) and watches for
// it. Each check uses a throwaway connection with a random client id. An error means a check
// could not be made: the broker is unreachable, or refused a login.
func Probe(ctx context.Context, url, user, password, hubUser, hubPassword string) (ProbeResult, error) {
	var r ProbeResult
	c, err := probeConnect(ctx, url, "", "")
	switch {
	case err == nil:
		r.Anonymous = true
		c.Disconnect(0)
	case !refused(err):
		return r, fmt.Errorf("probe anonymously: %w", err)
	}
	c, err = probeConnect(ctx, url, user, password)
	if err != nil {
		return r, fmt.Errorf("probe as %s: %w", user, err)
	}
	defer c.Disconnect(0)
	canary := fmt.Sprintf("canary-%d", time.Now().UnixNano())
	got := make(chan struct{}, 1)
	tok := c.Subscribe("#", 1, func(_ mqtt.Client, m mqtt.Message) {
		if string(m.Payload()) == canary {
			select {
			case got <- struct{}{}:
			default:
			}
		}
	})
	if err := wait(tok); err != nil {
		return r, fmt.Errorf("probe as %s: subscribe: %w", user, err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok && st.Result()["#"] == subackFailure {
		return r, nil
	}
	pub, err := probeConnect(ctx, url, hubUser, hubPassword)
	if err != nil {
		return r, fmt.Errorf("probe as %s: %w", hubUser, err)
	}
	defer pub.Disconnect(0)
	if err := wait(pub.Publish(CanaryTopic, 1, false, canary)); err != nil {
		return r, fmt.Errorf("probe as %s: publish canary: %w", hubUser, err)
	}
	select {
	case <-got:
		r.Wildcard = true
	case <-time.After(canaryWait):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	return r, nil
}

func wait(tok mqtt.Token) error {
	if !tok.WaitTimeout(probeTimeout) {
		return fmt.Errorf("no answer within %v", probeTimeout)
	}
	return tok.Error()
}

// refused reports whether a connection error is the broker refusing the credentials.
func refused(err error) bool {
	return errors.Is(err, packets.ErrorRefusedNotAuthorised) || errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword)
}

func probeConnect(ctx context.Context, url, user, password string) (mqtt.Client, error) {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("lanebridge-probe-%d", time.Now().UnixNano())).
		SetUsername(user).SetPassword(password).SetProtocolVersion(4).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(probeTimeout)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c, tok.Error()
}
