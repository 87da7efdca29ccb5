package harden

// allowedArch are amd64's legacy forms the Go runtime and x/sys still use.
var allowedArch = []string{"arch_prctl", "epoll_wait", "select", "poll", "pipe", "dup2", "stat", "lstat", "open", "readlink", "access", "time"}
