// Package firmwareprofiles embeds the firmware profiles shipped with the agent (*.yaml in this
// folder; the format is described in README.md). Load them with profile.LoadFS(FS).
package firmwareprofiles

import "embed"

// FS holds every shipped profile at its top level.
//
//go:embed *.yaml
var FS embed.FS
