// Package cluster shares learned profiles across the nodes of a Kubernetes
// cluster through the API server (docs/cluster.md).
//
// Every agent keeps learning into its local bbolt store and publishes the
// absolute, cumulative state of its profiles in one NodeProfile object named
// after its node (a per-node contribution slot: one writer, restated whole on
// every write, so retries, duplicates, lost responses and restarts never
// count an observation twice). One agent, elected with a Lease, merges the
// slots into one ImageProfile object per profile key: the merged profile is
// the sum of the live slots plus the folded-in contributions of departed
// nodes, and its per-category learning states are decided on the merged
// counts. Every agent watches the ImageProfiles with an informer and scores
// against them; the local profile is the fall-back while no merged profile
// exists (API down, first sync, a profile too large to share).
//
// The package does Kubernetes I/O with client-go's dynamic client and
// touches the profiler only through its exported API.
package cluster

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group is the API group of driftwatch's custom resources.
const Group = "driftwatch.io"

// Version is the served and stored version of the custom resources.
const Version = "v1alpha1"

// Resources of the two custom resources.
var (
	ImageProfileGVR = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "imageprofiles"}
	NodeProfileGVR  = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "nodeprofiles"}
)

// Encoding names the blob format of profiles inside the objects: the
// profiler's JSON export entry (features in text order), gzip-compressed,
// base64 in the JSON of the object.
const Encoding = "gzip+json/driftwatch-profile-v1"

// MaxObjectBytes bounds the JSON size of every object this package writes
// (the bound is 256 KiB; etcd's request limit is 1.5 MiB).
const MaxObjectBytes = 240 << 10

// KeyLabel carries a hash of the profile key on ImageProfiles (keys hold
// characters labels and names cannot).
const KeyLabel = "driftwatch.io/key-hash"

// ImageProfile is the cluster-wide merged profile of one profile key.
// Only the elected merger writes it.
type ImageProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ImageProfileSpec   `json:"spec"`
	Status            ImageProfileStatus `json:"status,omitempty"`
}

// ImageProfileSpec identifies the profile.
type ImageProfileSpec struct {
	// Key is the profile key (repo@digest, repo:tag, ...).
	Key string `json:"key"`
	// Image is the image reference the profile was learned from.
	Image string `json:"image,omitempty"`
}

// CategoryStates are the merged learning states per category.
type CategoryStates struct {
	Process   string `json:"process,omitempty"`
	Edge      string `json:"edge,omitempty"`
	File      string `json:"file,omitempty"`
	Network   string `json:"network,omitempty"`
	Listen    string `json:"listen,omitempty"`
	Privilege string `json:"privilege,omitempty"`
}

// ImageProfileStatus is the merged profile and its summary.
type ImageProfileStatus struct {
	// State summarises the categories: learning, stable, unstable or too_large.
	State  string         `json:"state,omitempty"`
	States CategoryStates `json:"states,omitempty"`
	// Features and Observations of the merged profile.
	Features     int64 `json:"features"`
	Observations int64 `json:"observations"`
	// Nodes is the number of live node slots contributing; RetiredNodes
	// the number of departed nodes folded into Retired.
	Nodes        int64 `json:"nodes"`
	RetiredNodes int64 `json:"retiredNodes"`
	// LastLearned is the newest event time of the merged profile (RFC 3339).
	LastLearned string `json:"lastLearned,omitempty"`
	// TooLarge: the merged profile did not fit in MaxObjectBytes; Profile is
	// empty and agents score this key against their local profiles.
	TooLarge bool `json:"tooLarge,omitempty"`
	// Encoding of Profile and Retired.
	Encoding string `json:"encoding,omitempty"`
	// Profile is the merged profile (Encoding).
	Profile string `json:"profile,omitempty"`
	// Retired is the sum of the contributions of departed nodes (Encoding).
	Retired string `json:"retired,omitempty"`
	// RetiredSlots lists "node/epoch" of the slots folded into Retired
	// whose NodeProfile may still exist (deleted right after folding); a
	// slot listed here is never summed again.
	RetiredSlots []string `json:"retiredSlots,omitempty"`
	// Hash is a digest of the merged content: the merger writes only when it changes.
	Hash string `json:"hash,omitempty"`
	// Bytes is the size of the encoded merged profile.
	Bytes int64 `json:"bytes,omitempty"`
}

// NodeProfile is one node's contribution slot: the absolute, cumulative
// state of every profile the node learned. Only the node's agent writes it;
// the merger deletes it once the node has left the cluster.
type NodeProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              NodeProfileSpec `json:"spec"`
}

// NodeProfileSpec is the node's published state.
type NodeProfileSpec struct {
	// Node is the node's name (also the object's name).
	Node string `json:"node"`
	// Epoch identifies the local store that produced the slot: a new store
	// on the same node (disk lost) adopts the slot's profiles first.
	Epoch string `json:"epoch"`
	// Generation counts the node's writes (monotonic per epoch).
	Generation int64 `json:"generation"`
	// Images are the node's profiles, sorted by key.
	Images []NodeImage `json:"images,omitempty"`
	// Omitted lists profile keys left out because the slot would exceed
	// MaxObjectBytes (they stay local to the node).
	Omitted []string `json:"omitted,omitempty"`
}

// NodeImage is one profile in a node's slot.
type NodeImage struct {
	Key          string `json:"key"`
	Image        string `json:"image,omitempty"`
	Features     int64  `json:"features"`
	Observations int64  `json:"observations"`
	// Hash of Data: the merger re-decodes only changed entries.
	Hash string `json:"hash"`
	// Data is the node's profile (Encoding).
	Data string `json:"data"`
}
