//go:build tools

// Package tools pins the chosen dependencies while the packages that use them are written.
package tools
import (
 _ "github.com/cilium/ebpf"
 _ "go.etcd.io/bbolt"
 _ "gonum.org/v1/gonum/stat"
 _ "gonum.org/v1/plot"
 _ "k8s.io/client-go/kubernetes"
 _ "k8s.io/cri-client/pkg"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/spf13/cobra"
 _ "github.com/fsnotify/fsnotify"
 _ "github.com/schollz/progressbar/v3"
 _ "gopkg.in/yaml.v3"
)
