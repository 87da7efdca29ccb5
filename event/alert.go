package event

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Priority is a Falco rule priority, from Emergency (0) to Debug (7).
type Priority int

const (
	PriorityEmergency Priority = iota
	PriorityAlert
	PriorityCritical
	PriorityError
	PriorityWarning
	PriorityNotice
	PriorityInformational
	PriorityDebug
)

var priorityNames = [...]string{"Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug"}

// String returns Falco's long priority name.
func (p Priority) String() string {
	if p >= 0 && int(p) < len(priorityNames) {
		return priorityNames[p]
	}
	return "Unknown"
}

// ParsePriority parses a priority name case-insensitively; "info" is an
// alias of Informational.
func ParsePriority(s string) (Priority, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	if l == "info" {
		return PriorityInformational, nil
	}
	for i, n := range priorityNames {
		if strings.ToLower(n) == l {
			return Priority(i), nil
		}
	}
	return 0, fmt.Errorf("unknown priority %q (want one of emergency, alert, critical, error, warning, notice, informational|info, debug)", s)
}

// MarshalText writes the long name, as Falco's JSON does.
func (p Priority) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses a priority name.
func (p *Priority) UnmarshalText(b []byte) error {
	v, err := ParsePriority(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Alert is one alert in Falco's JSON shape. Static rule matches, anomaly
// alerts and driftwatch's internal alerts all use it, so every output
// (stdout, file, falcosidekick over HTTP) carries them unchanged.
type Alert struct {
	Time     time.Time `json:"time"` // marshalled RFC 3339 with ns, UTC
	Rule     string    `json:"rule"`
	Priority Priority  `json:"priority"`
	Source   string    `json:"source"` // "syscall" for rules and anomalies, "internal" for driftwatch's own
	Tags     []string  `json:"tags"`   // sorted
	Hostname string    `json:"hostname"`
	Output   string    `json:"output"`
	// OutputFields holds typed values keyed by Falco field name (strings,
	// numbers, bools, nil for <NA>).
	OutputFields map[string]any `json:"output_fields"`

	// Not serialised: context for metrics and attribution.
	Namespace   string  `json:"-"`
	ContainerID string  `json:"-"`
	Pid         uint32  `json:"-"`
	Score       float64 `json:"-"` // anomaly score for model alerts, 0 otherwise
	EventNum    uint64  `json:"-"` // evt.num of the triggering event
	EventTime   int64   `json:"-"` // trace time of the triggering event, ns
}

// FalcoTimeFormat is the time layout of Falco's JSON alerts: RFC 3339 in
// UTC with exactly nine fractional digits.
const FalcoTimeFormat = "2006-01-02T15:04:05.000000000Z"

// alertJSON is Alert's serialised form: Falco's keys, in the
// alphabetical order Falco writes them, the time as text.
type alertJSON struct {
	Hostname     string         `json:"hostname"`
	Output       string         `json:"output"`
	OutputFields map[string]any `json:"output_fields"`
	Priority     Priority       `json:"priority"`
	Rule         string         `json:"rule"`
	Source       string         `json:"source"`
	Tags         []string       `json:"tags"`
	Time         string         `json:"time"`
}

// MarshalJSON writes the alert as AppendAlertJSON does.
func (a Alert) MarshalJSON() ([]byte, error) { return AppendAlertJSON(nil, &a) }

// UnmarshalJSON reads Falco's alert shape.
func (a *Alert) UnmarshalJSON(b []byte) error {
	var j alertJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil && j.Time != "" {
		return fmt.Errorf("alert time: %w", err)
	}
	*a = Alert{Time: t, Rule: j.Rule, Priority: j.Priority, Source: j.Source, Tags: j.Tags,
		Hostname: j.Hostname, Output: j.Output, OutputFields: j.OutputFields}
	return nil
}
