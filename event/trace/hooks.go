package trace

import "github.com/driftwatch/driftwatch/event"

// SetUpdateHandlers sets OnCgroup and OnContainer, so *Reader implements
// event.UpdateNotifier and the pipeline sees cgroups and containers that
// appeared during the capture.
func (r *Reader) SetUpdateHandlers(onCgroup func(id uint64, path string), onContainer func(info event.ContainerInfo)) {
	r.OnCgroup = onCgroup
	r.OnContainer = onContainer
}

var _ event.UpdateNotifier = (*Reader)(nil)
