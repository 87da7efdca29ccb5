package main

import (
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/driftwatch/driftwatch/agent"
	"github.com/driftwatch/driftwatch/agent/config"
	"github.com/driftwatch/driftwatch/bpf"
	"github.com/driftwatch/driftwatch/event"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func newAgentCmd() *cobra.Command {
	var (
		cfgPath, db, metricsAddr, defaultMode, kubeconfig, criEndpoint string
		rulesPaths, outputs                                            []string
		printDefault                                                   bool
	)
	cmd := &cobra.Command{
		Use:   "agent [--config FILE] [flags]",
		Short: "Run the live agent: sensor, rules, learned profiles, alerts and metrics",
		Long: `Runs the driftwatch daemon: the eBPF sensor feeds the process table and
container enrichment (Kubernetes pod informer, else the CRI, else the cgroup
id alone), static Falco rules and the per-namespace learned profiles, and
alerts go to the outputs in Falco's shape. Configuration comes from one YAML
file (--print-default-config shows every key and its default); flags override
the file (--default-mode also over a SIGHUP reload of the file). SIGHUP
reloads the rules and the file's modes section, SIGUSR1
reopens file outputs, SIGTERM flushes the outputs and checkpoints the
profiles. Exits 2 for a bad configuration or a missing kernel feature.
See docs/agent.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if printDefault {
				_, err := cmd.OutOrStdout().Write(config.DefaultYAML)
				return err
			}
			cfg := config.Default()
			if cfgPath != "" {
				c, err := config.Load(cfgPath)
				if err != nil {
					return withCode(2, err)
				}
				cfg = c
			}
			f := cmd.Flags()
			if f.Changed("db") {
				cfg.DB = db
			}
			if f.Changed("rules") {
				cfg.Rules = rulesPaths
			}
			if f.Changed("metrics-addr") {
				cfg.MetricsAddr = metricsAddr
			}
			if f.Changed("output") {
				cfg.Outputs = outputs
			}
			var modeOverride event.Mode
			if f.Changed("default-mode") {
				m, err := event.ParseMode(defaultMode)
				if err != nil {
					return withCode(2, errors.New("--default-mode: "+err.Error()))
				}
				cfg.Modes.Default = m
				modeOverride = m // kept across SIGHUP reloads of the file
			}
			if f.Changed("kubeconfig") {
				cfg.Kubernetes.Kubeconfig = kubeconfig
			}
			if f.Changed("cri-endpoint") {
				cfg.CRI.Endpoint = criEndpoint
			}
			if err := cfg.Validate(); err != nil {
				return withCode(2, err)
			}
			log := newLogger(cfg)
			slog.SetDefault(log)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err := agent.Run(ctx, cfg, agent.Options{ConfigPath: cfgPath, Version: version, Logger: log, Stdout: cmd.OutOrStdout(), DefaultMode: modeOverride})
			var envErr *agent.EnvError
			var bpfErr *bpf.EnvError
			if errors.As(err, &envErr) || errors.As(err, &bpfErr) {
				return withCode(2, err)
			}
			// The agent reads no input data: whatever stops it is its
			// environment's (exitUsage), bar a clean shutdown (nil).
			return withCode(exitUsage, err)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "YAML configuration file (see --print-default-config)")
	f.StringVar(&db, "db", "", "profile store, a bbolt file (default /var/lib/driftwatch/driftwatch.db)")
	f.StringArrayVar(&rulesPaths, "rules", nil, "rules file or directory, repeatable (default: the built-in rules)")
	f.StringVar(&metricsAddr, "metrics-addr", "", "address for /metrics and /healthz (default 127.0.0.1:9464; empty disables)")
	f.StringArrayVar(&outputs, "output", nil, "alert output, repeatable: stdout, stdout:json, file:PATH, http:URL (default stdout)")
	f.StringVar(&defaultMode, "default-mode", "", "mode of containers in namespaces without a driftwatch.io/mode label: off, learn, detect or auto (default learn)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster configuration when present)")
	f.StringVar(&criEndpoint, "cri-endpoint", "", "CRI socket, e.g. unix:///run/containerd/containerd.sock (default: the first well-known socket; none disables)")
	f.BoolVar(&printDefault, "print-default-config", false, "print the documented default configuration and exit")
	return cmd
}

func newLogger(cfg config.Config) *slog.Logger {
	var lvl slog.Level
	switch strings.ToLower(cfg.LogLevel) {
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
