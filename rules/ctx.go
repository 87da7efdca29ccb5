package rules

import (
	"net/netip"
	"unsafe"

	"github.com/driftwatch/driftwatch/event"
)

// ftype is a field's value type.
type ftype uint8

const (
	tString ftype = iota
	tInt
	tBool
	tIP
)

func (t ftype) String() string {
	switch t {
	case tInt:
		return "number"
	case tBool:
		return "bool"
	case tIP:
		return "ip"
	}
	return "string"
}

// value is one extracted field value; which member is meaningful depends
// on the field's type. Strings may be views into event buffers or the
// context's scratch space: valid only during one Eval.
type value struct {
	s  string
	n  int64
	ip netip.Addr
}

// getter extracts the i-th value of a field (i is 0 for single-valued
// fields); ok is false when the value is missing (<NA>) or, for
// multi-valued fields, when i is past the last value.
type getter func(c *evalCtx, i int) (value, bool)

// Scratch-cache slots for lazily built per-event strings.
const (
	cacheArgs = iota
	cacheCmdline
	cachePArgs
	cachePCmdline
	cacheCaps
	cacheCapPrm
	cacheCapInh
	cacheFlags
	cacheCwd
	cacheFDName
	cacheEvtArgs
	cacheReq
	cacheTime
	cacheEnv
	cacheEnvText
	cacheCount
)

// evalCtx is the per-event evaluation state, pooled per Ruleset so Eval
// allocates nothing in steady state.
type evalCtx struct {
	e     *event.Enriched
	rs    *Ruleset
	valid uint32
	cache [cacheCount]string
	bufs  [cacheCount][]byte
	// xbufs are scratch buffers for transformers, one per compiled use.
	xbufs [][]byte
	// synthFD is used when the event concerns an fd the table does not
	// describe (failed opens, events without enrichment).
	synthFD event.FD
	fdDone  bool
	fd      *event.FD
}

func (c *evalCtx) reset(e *event.Enriched) {
	c.e = e
	c.valid = 0
	c.fdDone = false
	c.fd = nil
}

// cached returns slot k if already built for this event.
func (c *evalCtx) cached(k int) (string, bool) {
	if c.valid&(1<<k) != 0 {
		return c.cache[k], true
	}
	return "", false
}

// store finalises buffer k as the cached string for slot k.
func (c *evalCtx) store(k int, b []byte) string {
	c.bufs[k] = b
	s := bstr(b)
	c.cache[k] = s
	c.valid |= 1 << k
	return s
}

// bstr views b as a string without copying; the caller must not let the
// result outlive the bytes.
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// commString views the event's comm up to its NUL.
func commString(e *event.Event) string {
	n := 0
	for n < len(e.Comm) && e.Comm[n] != 0 {
		n++
	}
	if n == 0 {
		return ""
	}
	return unsafe.String(&e.Comm[0], n)
}
