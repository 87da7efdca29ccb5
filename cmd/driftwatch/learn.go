package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftwatch/driftwatch/agent/pipeline"
	"github.com/driftwatch/driftwatch/eval/input"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/model"
	"github.com/driftwatch/driftwatch/profiler"
)

// openProfiles opens the profile store. A writing command (readOnly false)
// creates a missing store and gets a fresh one for a corrupt store, which is
// set aside and reported on stderr. A reading command never creates, moves
// or modifies the file: a missing or corrupt store is an error (exitData).
func openProfiles(db string, cfg profiler.Config, readOnly bool) (*profiler.Store, *profiler.Profiler, error) {
	if db == "" {
		return nil, nil, withCode(exitUsage, errors.New("--db is required"))
	}
	st, err := profiler.OpenStore(db, profiler.StoreOptions{Logger: slog.Default(), ReadOnly: readOnly})
	var sa *profiler.SetAsideError
	var ce *profiler.CorruptError
	switch {
	case errors.As(err, &sa):
		fmt.Fprintf(os.Stderr, "driftwatch: warning: %v\n", sa)
	case errors.As(err, &ce), errors.Is(err, fs.ErrNotExist):
		return nil, nil, withCode(exitData, err)
	case err != nil:
		return nil, nil, withCode(exitUsage, err) // locked, permissions, a directory
	}
	return st, profiler.New(st, cfg), nil
}

func newLearnCmd() *cobra.Command {
	var (
		db, format   string
		keepLearning bool
		asJSON       bool
		warmUp       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "learn --db FILE [--keep-learning] TRACE...",
		Short: "Learn per-image behaviour profiles from recorded traces",
		Long: `Replays each trace through the agent's pipeline with every container in
learn mode and stores the learned profiles in the bbolt file FILE (created if
absent; existing profiles keep learning). Afterwards each category of each
profile is finalised: detecting when its post-warm-up unseen-mass estimate is
within the bound, unstable otherwise (threshold raised by a margin). --keep-learning leaves
the states as the online lifecycle left them. Prints the profiles and their
states (docs/profiles.md).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := profiler.Config{}
			if warmUp > 0 {
				cfg.WarmUp = warmUp
			}
			// Every input must open before the store is touched, so a
			// rejected input never creates --db.
			for _, path := range args {
				src, err := input.Open(path, format)
				if err != nil {
					return withCode(exitData, err)
				}
				src.Close()
			}
			_, statErr := os.Stat(db)
			created := db != "" && errors.Is(statErr, fs.ErrNotExist)
			st, prof, err := openProfiles(db, cfg, false)
			if err != nil {
				return err
			}
			defer st.Close()
			// A store this run created is removed again when learning fails.
			fail := func(err error) error {
				if created {
					st.Close()
					os.Remove(db)
				} else if cerr := prof.Checkpoint(); cerr != nil {
					fmt.Fprintf(os.Stderr, "driftwatch: checkpoint: %v\n", cerr)
				}
				return withCode(exitData, err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			det := model.NewDetector(prof, model.Config{})
			for _, path := range args {
				if err := learnTrace(ctx, det, path, format); err != nil {
					return fail(err)
				}
			}
			prof.Finalize(keepLearning)
			if err := prof.Checkpoint(); err != nil {
				return err
			}
			return printProfiles(cmd.OutOrStdout(), prof.Profiles(), asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&db, "db", "", "profile store (bbolt file)")
	f.BoolVar(&keepLearning, "keep-learning", false, "do not finalise: profiles stay in their learning states")
	f.StringVar(&format, "input-format", input.Auto, "input format: "+strings.Join(input.Formats(), ", "))
	f.BoolVar(&asJSON, "json", false, "print the profile summaries as JSON")
	f.DurationVar(&warmUp, "warm-up", 0, "warm-up after container start that is learned but not counted towards stability (default 10s, or the first 300 events)")
	return cmd
}

func learnTrace(ctx context.Context, det *model.Detector, path, format string) error {
	src, err := input.Open(path, format)
	if err != nil {
		return withCode(exitData, err)
	}
	defer src.Close()
	p := pipeline.New(pipeline.Config{Detector: det, DefaultMode: event.ModeLearn})
	if err := p.Run(ctx, src); err != nil {
		return fmt.Errorf("learn %s: %w", path, err)
	}
	return nil
}

func printProfiles(w io.Writer, ps []profiler.ProfileSummary, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(profileSummariesJSON(ps))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tIMAGE\tFEATURES\tOBSERVATIONS\tBYTES\tSTATES (category=state features/observations unseen-mass)")
	for _, s := range ps {
		var cats []string
		for _, c := range s.Categories {
			if c.Observations == 0 {
				cats = append(cats, fmt.Sprintf("%s=%s", c.Category, c.State))
				continue
			}
			cats = append(cats, fmt.Sprintf("%s=%s %d/%d %.3g", c.Category, c.State, c.Distinct, c.Observations, c.UnseenMass))
		}
		img := s.Image
		if img == "" {
			img = "-"
		}
		flag := ""
		if s.TooLarge {
			flag = " TOO-LARGE"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s%s\n", event.Escape([]byte(s.Key)), event.Escape([]byte(img)), s.Features, s.Observations, s.SizeBytes, strings.Join(cats, ", "), flag)
	}
	return tw.Flush()
}

type categoryJSON struct {
	State        string  `json:"state"`
	Observations uint64  `json:"observations"`
	Features     int     `json:"features"`
	Singletons   uint64  `json:"singletons"`
	UnseenMass   float64 `json:"unseen_mass"`
}

type summaryJSON struct {
	profiler.ProfileSummary
	Categories map[string]categoryJSON `json:"categories"`
}

func profileSummariesJSON(ps []profiler.ProfileSummary) []summaryJSON {
	out := make([]summaryJSON, 0, len(ps))
	for _, s := range ps {
		j := summaryJSON{ProfileSummary: s, Categories: map[string]categoryJSON{}}
		for _, c := range s.Categories {
			j.Categories[c.Category.String()] = categoryJSON{State: c.State.String(), Observations: c.Observations,
				Features: c.Distinct, Singletons: c.Singletons, UnseenMass: c.UnseenMass}
		}
		out = append(out, j)
	}
	return out
}
