package protocol

import (
	"fmt"
	"strings"
)

// TopicRoot is the prefix of every topic of this major version.
const TopicRoot = "lanebridge/v1"

// Topic suffixes below lanebridge/v1/{store}/.
const (
	SuffixRecords   = "up/records"
	SuffixStatus    = "up/status"
	SuffixAcks      = "down/acks"
	SuffixInventory = "down/inventory"
	SuffixCommands  = "down/commands"
)

// Wildcard filters the hub subscribes to.
const (
	AllRecordsFilter = TopicRoot + "/+/" + SuffixRecords
	AllStatusFilter  = TopicRoot + "/+/" + SuffixStatus
)

func topic(store, suffix string) string { return TopicRoot + "/" + store + "/" + suffix }

// RecordsTopic is where an agent publishes record batches (QoS 1).
func RecordsTopic(store string) string { return topic(store, SuffixRecords) }

// StatusTopic is where an agent publishes its retained status and Will.
func StatusTopic(store string) string { return topic(store, SuffixStatus) }

// AcksTopic is where the hub publishes acks for a store.
func AcksTopic(store string) string { return topic(store, SuffixAcks) }

// InventoryTopic is reserved for inventory pushes.
func InventoryTopic(store string) string { return topic(store, SuffixInventory) }

// CommandsTopic is reserved for commands to agents.
func CommandsTopic(store string) string { return topic(store, SuffixCommands) }

// ParseTopic splits a lanebridge/v1/{store}/{dir}/{name} topic into the store and the suffix
// ("up/records"). It rejects other versions and invalid store ids.
func ParseTopic(t string) (store, suffix string, err error) {
	parts := strings.Split(t, "/")
	if len(parts) != 5 || parts[0] != "lanebridge" {
		return "", "", fmt.Errorf("topic %q: not a lanebridge topic", t)
	}
	if parts[1] != "v1" {
		return "", "", fmt.Errorf("topic %q: %w", t, ErrTooNew)
	}
	if err := ValidateStoreID(parts[2]); err != nil {
		return "", "", fmt.Errorf("topic %q: %w", t, err)
	}
	return parts[2], parts[3] + "/" + parts[4], nil
}
