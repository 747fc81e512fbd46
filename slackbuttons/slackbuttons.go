// Package slackbuttons is the protocol between the Approve and Abort buttons
// that providers/slack posts and chatops, which handles their presses: the
// action and block IDs, and the value each button carries. It is its own
// package so that both sides share it while providers/slack stays free of
// chatops (and of the Temporal SDK behind it).
package slackbuttons

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Action IDs of the buttons, and the block ID of the actions block that holds
// them.
const (
	ActionApprove = "cutover_approve"
	ActionAbort   = "cutover_abort"
	BlockDecide   = "cutover_decide"
)

// Value is what an Approve or Abort button carries: the release it decides
// on. Encoded as JSON, {"app":"shop","version":"1.5.0"}.
type Value struct {
	App     string `json:"app"`
	Version string `json:"version"`
}

// Encode returns the button's value.
func (v Value) Encode() string {
	b, _ := json.Marshal(v) // two strings always marshal
	return string(b)
}

// Parse reads a button's value. Slack sends back whatever a message carried,
// and a message can be forged: the caller still checks the app and version.
func Parse(s string) (Value, error) {
	var v Value
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return v, fmt.Errorf("button value: %w", err)
	}
	if v.App == "" || v.Version == "" {
		return v, errors.New("button value: needs app and version")
	}
	return v, nil
}
