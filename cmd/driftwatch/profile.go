package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner of this file): replace this placeholder with the real command.
func newProfileCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "profile",
		Short: "not implemented yet",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("profile: not implemented yet")
		},
	}
}
