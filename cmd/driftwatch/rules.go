package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/driftwatch/driftwatch/rules"
)

func newRulesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Validate and list Falco-compatible rules files",
	}
	cmd.AddCommand(newRulesCheckCmd(), newRulesListCmd())
	return cmd
}

func newRulesCheckCmd() *cobra.Command {
	var quiet bool
	c := &cobra.Command{
		Use:   "check PATH...",
		Short: "Load rules files or directories and report counts, warnings and errors (exit 1 on errors)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, rep, err := rules.Load(args, rules.Options{})
			return printCheck(cmd.OutOrStdout(), cmd.ErrOrStderr(), rep, err, quiet)
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not print warnings")
	return c
}

func printCheck(out, errOut io.Writer, rep *rules.Report, err error, quiet bool) error {
	if rep != nil {
		for _, f := range rep.Files {
			fmt.Fprintf(out, "%s: %d rules (%d enabled), %d macros, %d lists", f.Path, f.Rules, f.Enabled, f.Macros, f.Lists)
			if f.Skipped > 0 {
				fmt.Fprintf(out, ", %d skipped", f.Skipped)
			}
			fmt.Fprintln(out)
		}
		if rep.RequiredEngineVersion != "" {
			fmt.Fprintf(out, "required_engine_version: %s (driftwatch implements %s)\n", rep.RequiredEngineVersion, rules.EngineVersion)
		}
		for _, p := range rep.RequiredPlugins {
			fmt.Fprintf(out, "required plugin: %s >= %s (its fields are provided natively)\n", p.Name, p.Version)
		}
		if !quiet {
			for _, w := range rep.Warnings {
				fmt.Fprintf(errOut, "warning: %s\n", w)
			}
		}
	}
	if err != nil {
		var le *rules.LoadError
		if errors.As(err, &le) {
			for _, e := range le.Errs {
				fmt.Fprintf(errOut, "error: %s\n", e)
			}
			return withCode(1, fmt.Errorf("rules check: %d error(s)", len(le.Errs)))
		}
		return withCode(exitData, err)
	}
	if rep != nil {
		total := 0
		for _, f := range rep.Files {
			total += f.Rules
		}
		if total == 0 {
			return withCode(exitData, errors.New("rules check: no rules found (a rules file must define at least one rule)"))
		}
	}
	return nil
}

func newRulesListCmd() *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "list [PATH...]",
		Short: "List the rules in PATHs (the embedded defaults when none)",
		RunE: func(cmd *cobra.Command, args []string) error {
			var rs *rules.Ruleset
			var err error
			if len(args) == 0 {
				rs, _, err = rules.LoadDefault(rules.Options{})
			} else {
				rs, _, err = rules.Load(args, rules.Options{})
			}
			if err != nil {
				return withCode(1, err)
			}
			w := cmd.OutOrStdout()
			for _, r := range rs.Rules() {
				if !r.Enabled && !all {
					continue
				}
				state := ""
				if !r.Enabled {
					state = " (disabled)"
				}
				types := "all events"
				if r.EventTypes != nil {
					types = strings.Join(r.EventTypes, ",")
				}
				fmt.Fprintf(w, "%-13s %s%s\n    events: %s  tags: %s  (%s:%d)\n", r.Priority, r.Name, state, types, strings.Join(r.Tags, ","), r.File, r.Line)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&all, "all", false, "include disabled rules")
	return c
}
