// Command driftwatch is the container runtime security agent and its tools:
// live capture, replay, static rules, learned profiles, anomaly scoring and
// the evaluation harness. Each subcommand lives in its own file and does no
// more than parse flags and call into the packages that hold the logic.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries a specific process exit status (2: bad environment or
// configuration, 1: findings such as rule errors).
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
	return root
}

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "driftwatch: %v\n", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}
