package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/driftwatch/driftwatch/event"
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
	var format string
	c := &cobra.Command{
		Use:   "check PATH...",
		Short: "Load rules files or directories and report counts, skipped rules, warnings and errors (exit 1 on errors)",
		Long: `Load rules files or directories in order, as Falco does, and report per file the rules,
macros and lists it defines, the enabled rules that load but are skipped (a field driftwatch
cannot provide, event types its sensor does not report) with the reason, warnings and errors.
--format json prints one JSON object for scripts. Exit status 1 when any error is found.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, rep, err := rules.Load(args, rules.Options{})
			switch format {
			case "text":
				return printCheck(cmd.OutOrStdout(), cmd.ErrOrStderr(), rep, err, quiet)
			case "json":
				return printCheckJSON(cmd.OutOrStdout(), rep, err)
			}
			return withCode(2, fmt.Errorf("--format %q: want text or json", format))
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not print warnings")
	c.Flags().StringVar(&format, "format", "text", "output format: text or json")
	c.SilenceUsage = true // a failed check is not a usage error (and keeps JSON output clean)
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
		if len(rep.Skipped) > 0 {
			fmt.Fprintf(out, "skipped rules (enabled but not run): %d\n", len(rep.Skipped))
			for _, s := range rep.Skipped {
				fmt.Fprintf(out, "  %s:%d: %s: %s\n", s.File, s.Line, event.EscapeString(s.Rule), s.Reason)
			}
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

// checkJSON is the --format json document of rules check.
type checkJSON struct {
	OK                    bool               `json:"ok"`
	EngineVersion         string             `json:"engine_version"`
	Files                 []checkFileJSON    `json:"files"`
	RequiredEngineVersion string             `json:"required_engine_version,omitempty"`
	RequiredPlugins       []checkPluginJSON  `json:"required_plugins"`
	Skipped               []checkSkipJSON    `json:"skipped"`
	Warnings              []checkProblemJSON `json:"warnings"`
	Errors                []checkProblemJSON `json:"errors"`
}

type checkFileJSON struct {
	Path    string `json:"path"`
	Rules   int    `json:"rules"`
	Enabled int    `json:"enabled"`
	Skipped int    `json:"skipped"`
	Macros  int    `json:"macros"`
	Lists   int    `json:"lists"`
}

type checkPluginJSON struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	File    string `json:"file"`
}

type checkSkipJSON struct {
	Rule   string `json:"rule"`
	File   string `json:"file"`
	Line   int    `json:"line"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

type checkProblemJSON struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Kind    string `json:"kind,omitempty"`
	Name    string `json:"name,omitempty"`
	Message string `json:"message"`
}

func problemJSON(e *rules.Error) checkProblemJSON {
	return checkProblemJSON{File: e.File, Line: e.Line, Column: e.Column, Kind: e.Kind, Name: e.Name, Message: e.Msg}
}

// printCheckJSON writes the check result as one JSON object; the exit
// status is 1 on errors as for text.
func printCheckJSON(out io.Writer, rep *rules.Report, err error) error {
	doc := checkJSON{OK: err == nil, EngineVersion: rules.EngineVersion, Files: []checkFileJSON{},
		RequiredPlugins: []checkPluginJSON{}, Skipped: []checkSkipJSON{}, Warnings: []checkProblemJSON{}, Errors: []checkProblemJSON{}}
	if rep != nil {
		doc.RequiredEngineVersion = rep.RequiredEngineVersion
		for _, f := range rep.Files {
			doc.Files = append(doc.Files, checkFileJSON{Path: f.Path, Rules: f.Rules, Enabled: f.Enabled, Skipped: f.Skipped, Macros: f.Macros, Lists: f.Lists})
		}
		for _, p := range rep.RequiredPlugins {
			doc.RequiredPlugins = append(doc.RequiredPlugins, checkPluginJSON{Name: p.Name, Version: p.Version, File: p.File})
		}
		for _, s := range rep.Skipped {
			doc.Skipped = append(doc.Skipped, checkSkipJSON{Rule: s.Rule, File: s.File, Line: s.Line, Field: s.Field, Reason: s.Reason})
		}
		for _, w := range rep.Warnings {
			doc.Warnings = append(doc.Warnings, problemJSON(w))
		}
	}
	var le *rules.LoadError
	if errors.As(err, &le) {
		for _, e := range le.Errs {
			doc.Errors = append(doc.Errors, problemJSON(e))
		}
	} else if err != nil {
		doc.Errors = append(doc.Errors, checkProblemJSON{Message: err.Error()})
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if werr := enc.Encode(doc); werr != nil {
		return withCode(1, fmt.Errorf("rules check: %w", werr))
	}
	if err != nil {
		return withCode(1, fmt.Errorf("rules check: %d error(s)", len(doc.Errors)))
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
