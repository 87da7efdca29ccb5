package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner of this file): replace this placeholder with the real command.
func newRecordCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "record",
		Short: "not implemented yet",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("record: not implemented yet")
		},
	}
}
