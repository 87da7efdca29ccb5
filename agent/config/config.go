// Package config is the agent's configuration: one YAML file with documented
// defaults (Default, DefaultYAML), strict decoding that names file and line
// for every mistake, and validation. Command-line flags are applied on top by
// the caller, so flags override the file.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/driftwatch/driftwatch/event"
)

// DefaultYAML is the documented default configuration, printed by
// `driftwatch agent --print-default-config`. Decoding it yields Default().
//
//go:embed default.yaml
var DefaultYAML []byte

// Config is the agent's configuration.
type Config struct {
	// Hostname put on alerts; empty means os.Hostname().
	Hostname string `yaml:"hostname"`
	// DB is the bbolt profile store.
	DB string `yaml:"db"`
	// Rules are rule files or directories; empty means the built-in default rules.
	Rules []string `yaml:"rules"`
	// DefaultRules loads the built-in rules before Rules (always when Rules is empty).
	DefaultRules bool `yaml:"default_rules"`
	// WatchRules reloads rules when a rule file changes (SIGHUP always reloads).
	WatchRules bool `yaml:"watch_rules"`
	// MetricsAddr serves /metrics and /healthz; empty disables the server.
	MetricsAddr string `yaml:"metrics_addr"`
	// Outputs are output specs: stdout, stdout:json, file:PATH, http:URL.
	Outputs []string `yaml:"outputs"`
	// OutputQueue is each output's queue length; alerts beyond it are dropped and counted.
	OutputQueue int `yaml:"output_queue"`
	// OutputTimeout bounds one HTTP POST.
	OutputTimeout Duration `yaml:"output_timeout"`
	// FlushTimeout bounds how long shutdown waits for outputs to drain.
	FlushTimeout Duration `yaml:"flush_timeout"`
	// Modes decides learning and detection per namespace.
	Modes Modes `yaml:"modes"`
	// Learning tunes when learned profiles count as stable.
	Learning Learning `yaml:"learning"`
	// Suppression silences static-rule alerts the learned profile explains.
	Suppression Suppression `yaml:"suppression"`
	// Kubernetes metadata and namespace modes.
	Kubernetes Kubernetes `yaml:"kubernetes"`
	// CRI is the container runtime fallback for image and names.
	CRI CRI `yaml:"cri"`
	// ProcRoot is the host's /proc (a hostPath mount in a DaemonSet).
	ProcRoot string `yaml:"proc_root"`
	// CgroupMount is the cgroup v2 mount; empty means found from /proc/mounts.
	CgroupMount string `yaml:"cgroup_mount"`
	// Harden, once the sensor runs, drops every capability the running
	// agent does not need, sets no_new_privs and installs the seccomp
	// allow-list (docs/agent.md).
	Harden bool `yaml:"harden"`
	// CheckpointInterval is how often learned profiles are written to the store.
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
	// LossAlertInterval rate-limits the kernel event loss internal alert.
	LossAlertInterval Duration `yaml:"loss_alert_interval"`
	// MaxNamespaceLabels caps distinct namespace label values in metrics;
	// further namespaces are reported as "_other".
	MaxNamespaceLabels int `yaml:"max_namespace_labels"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log_format"`
}

// Modes holds the rollout modes (off, learn, detect).
type Modes struct {
	// Default applies to containers whose namespace has no driftwatch.io/mode label.
	Default event.Mode `yaml:"default"`
	// Host applies to processes outside containers.
	Host event.Mode `yaml:"host"`
	// Namespaces sets modes by namespace name; a namespace label in the
	// cluster takes precedence.
	Namespaces map[string]event.Mode `yaml:"namespaces"`
}

// Suppression configures learned suppression of static-rule alerts
// (agent/suppress, docs/rules.md).
type Suppression struct {
	// Enabled turns it on: in detect mode a rule's alert is dropped when
	// every feature of its event is in a stable profile category.
	Enabled bool `yaml:"enabled"`
	// PriorityFloor: alerts of this priority or more severe always pass.
	PriorityFloor string `yaml:"priority_floor"`
	// Rules by name: true lets the rule be suppressed whatever its
	// priority, false never suppresses it (the never_suppress tag wins).
	Rules map[string]bool `yaml:"rules"`
	// AnyRule also suppresses rules that never fired while the image was
	// learned (by default only learned noise is suppressed).
	AnyRule bool `yaml:"any_rule"`
}

// Learning tunes the profiler's learning lifecycle (docs/profiles.md).
type Learning struct {
	// WarmUp after a container starts is learned but does not count towards stability.
	WarmUp Duration `yaml:"warm_up"`
	// MinStable is how long a category's unseen-mass estimate must stay
	// below UnseenBound before it is stable.
	MinStable Duration `yaml:"min_stable"`
	// MaxLearn ends learning; a category not stable by then is unstable.
	MaxLearn Duration `yaml:"max_learn"`
	// UnseenBound is the Good–Turing unseen-mass bound for stability.
	UnseenBound float64 `yaml:"unseen_bound"`
}

// Kubernetes configures the API connection.
type Kubernetes struct {
	// Enabled is auto (in-cluster config or kubeconfig when present), true or false.
	Enabled string `yaml:"enabled"`
	// Kubeconfig is a kubeconfig file; empty means in-cluster config.
	Kubeconfig string `yaml:"kubeconfig"`
	// NodeName selects this node's pods; empty means $NODE_NAME, then the hostname.
	NodeName string `yaml:"node_name"`
	// ModeLabel is the namespace label holding the mode.
	ModeLabel string `yaml:"mode_label"`
	// Resync is the informers' resync period (0: none).
	Resync Duration `yaml:"resync"`
	// ProfileSync shares profiles cluster-wide (docs/cluster.md).
	ProfileSync ProfileSync `yaml:"profile_sync"`
}

// ProfileSync configures cluster-wide profiles through ImageProfile and
// NodeProfile objects.
type ProfileSync struct {
	// Enabled: true shares profiles whenever the API is configured, false never.
	Enabled bool `yaml:"enabled"`
	// Period: this node writes its NodeProfile at most once per period; a
	// feature learned anywhere reaches every agent within two periods.
	Period Duration `yaml:"period"`
	// Merge lets this agent stand for the merger Lease (false: never merge).
	Merge bool `yaml:"merge"`
	// Namespace holds the merger Lease; empty: $POD_NAMESPACE, then driftwatch.
	Namespace string `yaml:"namespace"`
}

// CRI configures the container runtime connection.
type CRI struct {
	// Endpoint is the CRI socket, e.g. unix:///run/containerd/containerd.sock;
	// empty means the first well-known socket that exists, "none" disables.
	Endpoint string `yaml:"endpoint"`
	// Timeout bounds one CRI call.
	Timeout Duration `yaml:"timeout"`
}

// Duration is a time.Duration written as "10s" in YAML.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Default returns the default configuration (the same as DefaultYAML).
func Default() Config {
	c, err := decode(Config{}, "default.yaml", DefaultYAML)
	if err != nil {
		panic("config: embedded default.yaml is invalid: " + err.Error())
	}
	return c
}

// Load reads and validates a configuration file on top of the defaults.
// Errors name the file and, where YAML gives one, the line.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return parse(path, b)
}

// Parse decodes b (named name in errors) on top of the defaults and validates it.
func Parse(name string, b []byte) (Config, error) { return parse(name, b) }

func parse(name string, b []byte) (Config, error) { return decode(Default(), name, b) }

func decode(c Config, name string, b []byte) (Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", name, tidyYAMLError(err))
	}
	if len(root.Content) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", name, tidyYAMLError(err))
		}
	}
	if err := c.validate(&root); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	return c, nil
}

// tidyYAMLError strips yaml.v3's "yaml: " prefixes so messages read
// "config FILE: line N: ...".
func tidyYAMLError(err error) error {
	s := err.Error()
	s = strings.ReplaceAll(s, "yaml: unmarshal errors:\n  ", "")
	s = strings.ReplaceAll(s, "\n  ", "; ")
	s = strings.TrimPrefix(s, "yaml: ")
	return errors.New(s)
}

// lineOf returns the line of the value at the given key path in the YAML
// tree, or 0 when absent.
func lineOf(root *yaml.Node, path ...string) int {
	n := root
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, k := range path {
		if n.Kind != yaml.MappingNode {
			return 0
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
				break
			}
		}
		if next == nil {
			return 0
		}
		n = next
	}
	return n.Line
}

func at(root *yaml.Node, err error, path ...string) error {
	if l := lineOf(root, path...); l > 0 {
		return fmt.Errorf("line %d: %s: %w", l, strings.Join(path, "."), err)
	}
	return fmt.Errorf("%s: %w", strings.Join(path, "."), err)
}

// Validate checks the values (for a Config assembled in code or after flags).
func (c *Config) Validate() error { return c.validate(nil) }

func (c *Config) validate(root *yaml.Node) error {
	for _, m := range []struct {
		v    event.Mode
		path []string
	}{{c.Modes.Default, []string{"modes", "default"}}, {c.Modes.Host, []string{"modes", "host"}}} {
		if _, err := event.ParseMode(string(m.v)); err != nil {
			return at(root, err, m.path...)
		}
	}
	for ns, m := range c.Modes.Namespaces {
		if _, err := event.ParseMode(string(m)); err != nil {
			return at(root, err, "modes", "namespaces", ns)
		}
	}
	for i, o := range c.Outputs {
		if err := CheckOutputSpec(o); err != nil {
			if l := lineOf(root, "outputs"); l > 0 {
				return fmt.Errorf("line %d: outputs[%d]: %w", l, i, err)
			}
			return fmt.Errorf("outputs[%d]: %w", i, err)
		}
	}
	if _, err := event.ParsePriority(c.Suppression.PriorityFloor); err != nil {
		return at(root, err, "suppression", "priority_floor")
	}
	if c.OutputQueue < 1 {
		return at(root, fmt.Errorf("must be at least 1, got %d", c.OutputQueue), "output_queue")
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return at(root, err, "metrics_addr")
		}
	}
	switch c.Kubernetes.Enabled {
	case "auto", "true", "false":
	default:
		return at(root, fmt.Errorf("want auto, true or false, got %q", c.Kubernetes.Enabled), "kubernetes", "enabled")
	}
	if c.Kubernetes.ModeLabel == "" {
		return at(root, errors.New("must not be empty"), "kubernetes", "mode_label")
	}
	if p := c.Kubernetes.ProfileSync.Period.D(); p < time.Second || p > time.Minute {
		return at(root, fmt.Errorf("want between 1s and 1m, got %v", p), "kubernetes", "profile_sync", "period")
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return at(root, fmt.Errorf("want debug, info, warn or error, got %q", c.LogLevel), "log_level")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return at(root, fmt.Errorf("want text or json, got %q", c.LogFormat), "log_format")
	}
	if c.DB == "" {
		return at(root, errors.New("must not be empty"), "db")
	}
	if c.Learning.UnseenBound <= 0 || c.Learning.UnseenBound >= 1 {
		return at(root, fmt.Errorf("must be in (0, 1), got %v", c.Learning.UnseenBound), "learning", "unseen_bound")
	}
	if c.MaxNamespaceLabels < 1 {
		return at(root, fmt.Errorf("must be at least 1, got %d", c.MaxNamespaceLabels), "max_namespace_labels")
	}
	for _, d := range []struct {
		v    Duration
		name string
	}{{c.OutputTimeout, "output_timeout"}, {c.FlushTimeout, "flush_timeout"}, {c.CheckpointInterval, "checkpoint_interval"},
		{c.LossAlertInterval, "loss_alert_interval"}, {c.CRI.Timeout, "cri.timeout"}, {c.Learning.WarmUp, "learning.warm_up"},
		{c.Learning.MinStable, "learning.min_stable"}, {c.Learning.MaxLearn, "learning.max_learn"}} {
		if d.v <= 0 {
			return at(root, fmt.Errorf("must be positive, got %s", d.v.D()), strings.Split(d.name, ".")...)
		}
	}
	return nil
}

// CheckOutputSpec validates one output spec: stdout, stdout:json,
// file:PATH or http:URL (http://… or https://…).
func CheckOutputSpec(s string) error {
	switch {
	case s == "stdout", s == "stdout:json", s == "stdout:text":
		return nil
	case strings.HasPrefix(s, "file:"):
		if strings.TrimPrefix(s, "file:") == "" {
			return fmt.Errorf("output %q: file: needs a path", s)
		}
		return nil
	case strings.HasPrefix(s, "http:"):
		u := strings.TrimPrefix(s, "http:")
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("output %q: http: needs an http:// or https:// URL", s)
		}
		return nil
	}
	return fmt.Errorf("output %q: want stdout, stdout:json, file:PATH or http:URL", s)
}
