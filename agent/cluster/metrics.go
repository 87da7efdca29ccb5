package cluster

import "github.com/prometheus/client_golang/prometheus"

// Collector exports a Syncer's counters as Prometheus metrics; register it
// on the agent's registry.
type Collector struct{ s *Syncer }

// NewCollector returns the Syncer's metrics collector.
func NewCollector(s *Syncer) *Collector { return &Collector{s: s} }

var (
	descWrites = prometheus.NewDesc("driftwatch_profile_sync_writes_total",
		"Objects written by cluster profile sync, by kind (nodeprofile: this node's slot; imageprofile: merged profiles, as merger).", []string{"kind"}, nil)
	descConflicts = prometheus.NewDesc("driftwatch_profile_sync_conflicts_total",
		"Writes refused with 409 Conflict (stale resourceVersion) and retried after re-reading.", nil, nil)
	descErrors = prometheus.NewDesc("driftwatch_profile_sync_errors_total",
		"Failed API calls of cluster profile sync (retried next period; learning continues locally).", nil, nil)
	descRetired = prometheus.NewDesc("driftwatch_profile_sync_retired_total",
		"Slots of departed nodes folded into retired totals (as merger).", nil, nil)
	descLeader = prometheus.NewDesc("driftwatch_profile_sync_leader",
		"1 while this agent holds the merger Lease.", nil, nil)
	descMerged = prometheus.NewDesc("driftwatch_profile_sync_merged_profiles",
		"Cluster-wide profiles held for scoring.", nil, nil)
	descSlotBytes = prometheus.NewDesc("driftwatch_profile_sync_slot_bytes",
		"JSON size of this node's last NodeProfile write.", nil, nil)
	descOmitted = prometheus.NewDesc("driftwatch_profile_sync_omitted_profiles",
		"Profiles left out of this node's slot because it would exceed the object bound (kept local).", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWrites, descConflicts, descErrors, descRetired, descLeader, descMerged, descSlotBytes, descOmitted} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	leader := 0.0
	if st.Leader {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(descWrites, prometheus.CounterValue, float64(st.SlotWrites), "nodeprofile")
	ch <- prometheus.MustNewConstMetric(descWrites, prometheus.CounterValue, float64(st.ImageWrites), "imageprofile")
	ch <- prometheus.MustNewConstMetric(descConflicts, prometheus.CounterValue, float64(st.Conflicts))
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(st.Errors))
	ch <- prometheus.MustNewConstMetric(descRetired, prometheus.CounterValue, float64(st.Retired))
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, leader)
	ch <- prometheus.MustNewConstMetric(descMerged, prometheus.GaugeValue, float64(len(c.s.Merged().Keys())))
	ch <- prometheus.MustNewConstMetric(descSlotBytes, prometheus.GaugeValue, float64(st.SlotBytes))
	ch <- prometheus.MustNewConstMetric(descOmitted, prometheus.GaugeValue, float64(st.Omitted))
}
