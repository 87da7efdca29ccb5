package format

import "github.com/driftwatch/driftwatch/event"

// appendRes appends Falco's evt.res: "SUCCESS", or the errno name of a
// negative return ("E<number>" when the name is unknown).
func appendRes(b []byte, ret int64) []byte {
	if ret >= 0 {
		return append(b, "SUCCESS"...)
	}
	return event.AppendErrnoName(b, -ret)
}
