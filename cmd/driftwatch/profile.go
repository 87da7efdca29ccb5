package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftwatch/driftwatch/agent/suppress"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/profiler"
)

func newProfileCmd() *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:   "profile list|show|diff|export|import|reset --db FILE [IMAGE]",
		Short: "Inspect and manage learned profiles",
		Long: `Profiles are keyed by image (docs/profiles.md): the digest when known
(repo@sha256:…), else repository:tag, else the container id; "host" for host
processes. IMAGE arguments are profile keys as printed by "profile list".`,
	}
	cmd.PersistentFlags().StringVar(&db, "db", "", "profile store (bbolt file)")
	// withStore opens the store for a subcommand; only import may create
	// it, so a mistyped --db is an error rather than a new empty store.
	// list, show, diff and export open it read-only: they never create,
	// migrate or set aside a store.
	withStore := func(fn func(cmd *cobra.Command, args []string, st *profiler.Store, p *profiler.Profiler) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			readOnly := cmd.Name() != "import" && cmd.Name() != "reset"
			if cmd.Name() == "reset" && db != "" {
				if _, err := os.Stat(db); err != nil {
					return withCode(exitData, fmt.Errorf("profile store: %w", err))
				}
			}
			st, p, err := openProfiles(db, profiler.Config{}, readOnly)
			if err != nil {
				return err
			}
			defer st.Close()
			return fn(cmd, args, st, p)
		}
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list --db FILE",
		Short: "List profiles with their states per category",
		Args:  cobra.NoArgs,
		RunE: withStore(func(cmd *cobra.Command, _ []string, _ *profiler.Store, p *profiler.Profiler) error {
			return printProfiles(cmd.OutOrStdout(), p.Profiles(), asJSON)
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "JSON output")

	var category string
	show := &cobra.Command{
		Use:   "show --db FILE IMAGE",
		Short: "Show a profile's features with counts and first/last-seen times",
		Args:  cobra.ExactArgs(1),
		RunE: withStore(func(cmd *cobra.Command, args []string, _ *profiler.Store, p *profiler.Profiler) error {
			if err := showProfile(cmd.OutOrStdout(), p, args[0], category); err != nil {
				return err
			}
			if category != "" {
				return nil
			}
			return showSuppressions(cmd.OutOrStdout(), suppress.FileFor(db), args[0])
		}),
	}
	show.Flags().StringVar(&category, "category", "", "only this category (process, edge, file, network, listen, privilege)")

	diff := &cobra.Command{
		Use:   "diff --db FILE IMAGE-A IMAGE-B",
		Short: "Features only in one of two profiles, and count changes",
		Args:  cobra.ExactArgs(2),
		RunE: withStore(func(cmd *cobra.Command, args []string, _ *profiler.Store, p *profiler.Profiler) error {
			return diffProfiles(cmd.OutOrStdout(), p, args[0], args[1])
		}),
	}

	var outFile string
	export := &cobra.Command{
		Use:   "export --db FILE [IMAGE...] [-o OUT]",
		Short: "Export profiles (all when no IMAGE) as JSON",
		RunE: withStore(func(cmd *cobra.Command, args []string, _ *profiler.Store, p *profiler.Profiler) error {
			w := cmd.OutOrStdout()
			if outFile != "" && outFile != "-" {
				f, err := os.Create(outFile)
				if err != nil {
					return withCode(exitUsage, err)
				}
				defer f.Close()
				w = f
			}
			for _, k := range args {
				if !slices.Contains(p.Keys(), k) {
					return withCode(exitData, fmt.Errorf("no profile %q (see profile list)", k))
				}
			}
			return p.ExportJSON(w, args...)
		}),
	}
	export.Flags().StringVarP(&outFile, "output", "o", "-", "output file")

	imp := &cobra.Command{
		Use:   "import --db FILE [JSON-FILE]",
		Short: "Import exported profiles (stdin when no file); existing profiles merge (counts add)",
		Args:  cobra.MaximumNArgs(1),
		RunE: withStore(func(cmd *cobra.Command, args []string, _ *profiler.Store, p *profiler.Profiler) error {
			var r io.Reader = cmd.InOrStdin()
			name := "stdin"
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return withCode(exitData, err)
				}
				defer f.Close()
				r, name = f, args[0]
			}
			keys, err := p.ImportJSON(r)
			if err != nil {
				return withCode(exitData, fmt.Errorf("%s: %w", name, err))
			}
			if err := p.Checkpoint(); err != nil {
				return err
			}
			for _, k := range keys {
				fmt.Fprintf(cmd.OutOrStdout(), "imported %s\n", event.Escape([]byte(k)))
			}
			return nil
		}),
	}

	var all bool
	reset := &cobra.Command{
		Use:   "reset --db FILE IMAGE... | --all",
		Short: "Forget profiles so they are learned afresh",
		RunE: withStore(func(cmd *cobra.Command, args []string, _ *profiler.Store, p *profiler.Profiler) error {
			if all {
				args = p.Keys()
			} else if len(args) == 0 {
				return withCode(2, errors.New("reset: name profiles or pass --all"))
			}
			for _, k := range args {
				if !p.Reset(k) {
					return withCode(exitData, fmt.Errorf("reset: no profile %q", k))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "reset %s\n", event.Escape([]byte(k)))
			}
			return p.Checkpoint()
		}),
	}
	reset.Flags().BoolVar(&all, "all", false, "reset every profile")

	cmd.AddCommand(list, show, diff, export, imp, reset)
	return cmd
}

type featureRow struct {
	text  string
	count uint64
	first int64
	last  int64
}

func profileRows(p *profiler.Profiler, key string) (map[profiler.Category][]featureRow, map[profiler.Category]profiler.CategoryStats, *profiler.Profile, error) {
	rows := map[profiler.Category][]featureRow{}
	stats := map[profiler.Category]profiler.CategoryStats{}
	var found *profiler.Profile
	p.WithProfile(key, func(pr *profiler.Profile) {
		if pr == nil {
			return
		}
		found = pr
		for c := profiler.Category(0); c < profiler.NumCategories; c++ {
			stats[c] = pr.Stats(c)
			pr.EachFeature(c, func(_ uint64, f *profiler.FeatureStat) {
				rows[c] = append(rows[c], featureRow{f.Text, f.Count, f.First, f.Last})
			})
		}
	})
	if found == nil {
		return nil, nil, nil, withCode(exitData, fmt.Errorf("no profile %q (see profile list)", key))
	}
	return rows, stats, found, nil
}

func fmtTime(ns int64) string {
	if ns == 0 {
		return "-"
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339)
}

func showProfile(w io.Writer, p *profiler.Profiler, key, only string) error {
	var want *profiler.Category
	if only != "" {
		c, ok := profiler.ParseCategory(only)
		if !ok {
			return withCode(2, fmt.Errorf("unknown category %q", only))
		}
		want = &c
	}
	rows, stats, pr, err := profileRows(p, key)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "profile %s", event.Escape([]byte(pr.Key)))
	if pr.Image != "" {
		fmt.Fprintf(w, " image %s", event.Escape([]byte(pr.Image)))
	}
	if pr.InheritedFrom != "" {
		fmt.Fprintf(w, " inherited from %s", event.Escape([]byte(pr.InheritedFrom)))
	}
	if pr.TooLarge {
		fmt.Fprint(w, " TOO LARGE (no new features learned)")
	}
	fmt.Fprintln(w)
	for c := profiler.Category(0); c < profiler.NumCategories; c++ {
		if want != nil && *want != c {
			continue
		}
		s := stats[c]
		fmt.Fprintf(w, "\n[%s] state=%s observations=%d features=%d singletons=%d unseen-mass=%.3g\n", c, s.State, s.Observations, s.Distinct, s.Singletons, s.UnseenMass)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  COUNT\tFIRST\tLAST\tFEATURE")
		for _, r := range rows[c] {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", r.count, fmtTime(r.first), fmtTime(r.last), event.Escape([]byte(r.text)))
		}
		tw.Flush()
	}
	return nil
}

func diffProfiles(w io.Writer, p *profiler.Profiler, a, b string) error {
	ra, _, _, err := profileRows(p, a)
	if err != nil {
		return err
	}
	rb, _, _, err := profileRows(p, b)
	if err != nil {
		return err
	}
	same := true
	for c := profiler.Category(0); c < profiler.NumCategories; c++ {
		ma := map[string]uint64{}
		for _, r := range ra[c] {
			ma[r.text] = r.count
		}
		mb := map[string]uint64{}
		for _, r := range rb[c] {
			mb[r.text] = r.count
		}
		var lines []string
		for t, n := range ma {
			if m, ok := mb[t]; !ok {
				lines = append(lines, fmt.Sprintf("- %s (×%d)", event.Escape([]byte(t)), n))
			} else if m != n {
				lines = append(lines, fmt.Sprintf("~ %s (×%d → ×%d)", event.Escape([]byte(t)), n, m))
			}
		}
		for t, m := range mb {
			if _, ok := ma[t]; !ok {
				lines = append(lines, fmt.Sprintf("+ %s (×%d)", event.Escape([]byte(t)), m))
			}
		}
		if len(lines) == 0 {
			continue
		}
		same = false
		sort.Slice(lines, func(i, j int) bool { return lines[i][2:] < lines[j][2:] })
		fmt.Fprintf(w, "[%s]\n", c)
		for _, l := range lines {
			fmt.Fprintln(w, "  "+l)
		}
	}
	if same {
		fmt.Fprintln(w, "no differences in features or counts")
	}
	return nil
}

// showSuppressions lists the static-rule alerts the agent suppressed
// because this profile knew their events (agent/suppress, kept in
// DB.suppressed.json by the agent).
func showSuppressions(w io.Writer, path, key string) error {
	es, err := suppress.Load(path)
	if err != nil {
		return err
	}
	var mine []suppress.Entry
	for _, e := range es {
		if e.Profile == key {
			mine = append(mine, e)
		}
	}
	fmt.Fprintf(w, "\n[suppressed static-rule alerts] %d rules\n", len(mine))
	if len(mine) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  COUNT\tFIRST\tLAST\tPRIORITY\tRULE\tMATCHED FEATURES (first suppression)")
	for _, e := range mine {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", e.Count, fmtTime(e.First), fmtTime(e.Last), e.Priority,
			event.Escape([]byte(e.Rule)), event.Escape([]byte(strings.Join(e.Features, "; "))))
	}
	return tw.Flush()
}
