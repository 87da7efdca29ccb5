package event

import "strconv"

// errnoNames are the Linux errno names Falco prints in evt.res.
var errnoNames = [...]string{
	1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 8: "ENOEXEC",
	9: "EBADF", 10: "ECHILD", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 15: "ENOTBLK",
	16: "EBUSY", 17: "EEXIST", 18: "EXDEV", 19: "ENODEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL",
	23: "ENFILE", 24: "EMFILE", 25: "ENOTTY", 26: "ETXTBSY", 27: "EFBIG", 28: "ENOSPC", 29: "ESPIPE",
	30: "EROFS", 31: "EMLINK", 32: "EPIPE", 33: "EDOM", 34: "ERANGE", 35: "EDEADLK", 36: "ENAMETOOLONG",
	37: "ENOLCK", 38: "ENOSYS", 39: "ENOTEMPTY", 40: "ELOOP", 42: "ENOMSG", 43: "EIDRM",
	61: "ENODATA", 62: "ETIME", 71: "EPROTO", 74: "EBADMSG", 75: "EOVERFLOW", 84: "EILSEQ",
	88: "ENOTSOCK", 89: "EDESTADDRREQ", 90: "EMSGSIZE", 91: "EPROTOTYPE", 92: "ENOPROTOOPT",
	93: "EPROTONOSUPPORT", 94: "ESOCKTNOSUPPORT", 95: "EOPNOTSUPP", 96: "EPFNOSUPPORT",
	97: "EAFNOSUPPORT", 98: "EADDRINUSE", 99: "EADDRNOTAVAIL", 100: "ENETDOWN", 101: "ENETUNREACH",
	102: "ENETRESET", 103: "ECONNABORTED", 104: "ECONNRESET", 105: "ENOBUFS", 106: "EISCONN",
	107: "ENOTCONN", 108: "ESHUTDOWN", 110: "ETIMEDOUT", 111: "ECONNREFUSED", 112: "EHOSTDOWN",
	113: "EHOSTUNREACH", 114: "EALREADY", 115: "EINPROGRESS", 116: "ESTALE", 122: "EDQUOT",
	125: "ECANCELED", 126: "ENOKEY", 130: "EOWNERDEAD", 131: "ENOTRECOVERABLE",
}

// ErrnoName returns the symbolic name of errno n (n > 0), as Falco prints
// it in evt.res: "ENOENT", or "E<n>" when the name is unknown.
func ErrnoName(n int64) string {
	if n > 0 && n < int64(len(errnoNames)) && errnoNames[n] != "" {
		return errnoNames[n]
	}
	return "E" + strconv.FormatInt(n, 10)
}

// AppendErrnoName appends ErrnoName(n) to b without allocating.
func AppendErrnoName(b []byte, n int64) []byte {
	if n > 0 && n < int64(len(errnoNames)) && errnoNames[n] != "" {
		return append(b, errnoNames[n]...)
	}
	return strconv.AppendInt(append(b, 'E'), n, 10)
}

// ProtoName returns Falco's fd.l4proto name of an IPPROTO number: tcp,
// udp, icmp, raw, or "" when unknown.
func ProtoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP:
		return "icmp"
	case ProtoRaw:
		return "raw"
	}
	return ""
}
