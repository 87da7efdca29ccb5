// Command driftwatch is the container runtime security agent and its tools:
// live capture, replay, static rules, learned profiles, anomaly scoring and
// the evaluation harness. Each subcommand lives in its own file and does no
// more than parse flags and call into the packages that hold the logic.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes, the same for every subcommand (README.md, "Exit codes"):
const (
	// exitOK: the command did what was asked.
	exitOK = 0
	// exitData: findings or bad input data — a trace, rules file, dataset,
	// profile store or import file that is missing, unreadable, corrupt or
	// invalid, a profile named that does not exist, rule errors.
	exitData = 1
	// exitUsage: usage or environment — unknown command or flag, a bad flag
	// value or argument count, a configuration file, missing privileges or
	// kernel features, a locked store, an output that cannot be written.
	exitUsage = 2
)

// exitError carries a specific process exit status (exitData, exitUsage).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err so main exits with code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "driftwatch",
		Short:         "Container runtime security: eBPF sensor, Falco-compatible rules and learned behaviour profiles",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newAgentCmd(),
		newRecordCmd(),
		newReplayCmd(),
		newDetectCmd(),
		newLearnCmd(),
		newProfileCmd(),
		newRulesCmd(),
		newEvalCmd(),
		newBenchCmd(),
		newVersionCmd(),
	)
	usageCodes(root)
	return root
}

// usageCodes makes cobra's own errors (bad flags, wrong argument counts)
// exit with exitUsage in every command under c.
func usageCodes(c *cobra.Command) {
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withCode(exitUsage, err) })
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error { return withCode(exitUsage, args(cmd, a)) }
	}
	for _, sub := range c.Commands() {
		usageCodes(sub)
	}
}

// exitCode maps a command's error to the process exit status.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// Cobra's command lookup and required-flag checks bypass the hooks above.
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "required flag", "invalid argument"} {
		if strings.HasPrefix(msg, p) {
			return exitUsage
		}
	}
	return exitData
}

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "driftwatch: %v\n", err)
		os.Exit(exitCode(err))
	}
}
