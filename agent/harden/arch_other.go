//go:build !amd64

package harden

var allowedArch []string
