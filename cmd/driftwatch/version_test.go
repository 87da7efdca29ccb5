package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	old := version
	version = "v1.2.3-test"
	defer func() { version = old }()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(out.String())
	if !strings.HasPrefix(s, "driftwatch v1.2.3-test") || !strings.HasSuffix(s, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("version prints %q", s)
	}
}
