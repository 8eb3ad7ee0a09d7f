package broker

import (
	"testing"

	"github.com/lanebridge/lanebridge/protocol"
)

func TestMayPublish(t *testing.T) {
	tests := []struct {
		store, topic string
		want         bool
	}{
		{"S1", protocol.RecordsTopic("S1"), true},
		{"S1", protocol.StatusTopic("S1"), true},
		{"S1", protocol.RecordsTopic("S2"), false},
		{"S1", protocol.StatusTopic("S2"), false},
		{"S1", protocol.AcksTopic("S1"), false}, // a store must not forge its own acks
		{"S1", protocol.CommandsTopic("S1"), false},
		{"S1", protocol.RecordsTopic("S1") + "/x", false},
		{"S1", "lanebridge/v1/S1/up", false},
		{"S1", "lanebridge/v1/S1", false},
		{"S1", "lanebridge/v1/S10/up/records", false},
		{"S10", "lanebridge/v1/S1/up/records", false},
		{"S1", "lanebridge/v2/S1/up/records", false},
		{"S1", "$SYS/broker/version", false},
		{"S1", "", false},
		{"", "lanebridge/v1//up/records", false},
		{"a/b", "lanebridge/v1/a/b/up/records", false},
		{"+", "lanebridge/v1/+/up/records", false},
	}
	for _, tt := range tests {
		if got := mayPublish(tt.store, tt.topic); got != tt.want {
			t.Errorf("mayPublish(%q, %q) = %v, want %v", tt.store, tt.topic, got, tt.want)
		}
	}
}

func TestMayRead(t *testing.T) {
	tests := []struct {
		store, filter string
		want          bool
	}{
		{"S1", protocol.AcksTopic("S1"), true},
		{"S1", protocol.InventoryTopic("S1"), true},
		{"S1", protocol.CommandsTopic("S1"), true},
		{"S1", "lanebridge/v1/S1/down/+", true},
		{"S1", protocol.AcksTopic("S2"), false},
		{"S1", "lanebridge/v1/S2/down/+", false},
		{"S1", "lanebridge/v1/+/down/acks", false},
		{"S1", "lanebridge/v1/S1/down/#", false},
		{"S1", "lanebridge/v1/S1/#", false},
		{"S1", "lanebridge/v1/S1/+/acks", false},
		{"S1", "lanebridge/v1/S1/down", false},
		{"S1", "lanebridge/v1/S1/down/acks/x", false},
		{"S1", "lanebridge/v1/S1/down/other", false}, // delivery via down/+ of an unknown suffix
		{"S1", protocol.RecordsTopic("S1"), false},
		{"S1", protocol.StatusTopic("S1"), false},
		{"S1", "#", false},
		{"S1", "+/+/+/+/+", false},
		{"S1", "$SYS/#", false},
		{"S1", "$share/g/" + protocol.AcksTopic("S1"), false},
		{"S1", "lanebridge/v1/S1/down/acks", true},
		{"S10", protocol.AcksTopic("S1"), false},
		{"", "lanebridge/v1//down/acks", false},
	}
	for _, tt := range tests {
		if got := mayRead(tt.store, tt.filter); got != tt.want {
			t.Errorf("mayRead(%q, %q) = %v, want %v", tt.store, tt.filter, got, tt.want)
		}
	}
}

func TestCapabilitiesKeepOfflineStoresForAWeek(t *testing.T) {
	const week = 7 * 24 * 60 * 60
	c := capabilities(DefaultMaxClients)
	if c.MaximumMessageExpiryInterval < week {
		t.Errorf("MaximumMessageExpiryInterval = %d s, want >= %d", c.MaximumMessageExpiryInterval, week)
	}
	if c.MaximumSessionExpiryInterval < week {
		t.Errorf("MaximumSessionExpiryInterval = %d s, want >= %d", c.MaximumSessionExpiryInterval, week)
	}
	if c.MaximumPacketSize < 2<<20 || c.MaximumPacketSize > 16<<20 {
		t.Errorf("MaximumPacketSize = %d, want between 2 and 16 MiB", c.MaximumPacketSize)
	}
}
