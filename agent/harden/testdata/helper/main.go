// Command helper applies harden.Apply to itself and reports what it can
// still do, for harden's tests (built with CGO_ENABLED=0).
package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/driftwatch/driftwatch/agent/harden"
)

type result struct {
	ApplyErr    string            `json:"apply_err"`
	CapsDropped bool              `json:"caps_dropped"`
	Status      map[string]string `json:"status"`
	ExecErr     string            `json:"exec_err"`
	FileErr     string            `json:"file_err"`
	HTTPErr     string            `json:"http_err"`
	ProcErr     string            `json:"proc_err"`
}

func main() {
	var r result
	// Like the agent's metrics port: bound before Apply (bind and listen
	// are not allowed afterwards).
	ln, lnErr := net.Listen("tcp", "127.0.0.1:0")
	rep, err := harden.Apply()
	if err != nil {
		r.ApplyErr = err.Error()
	}
	r.CapsDropped = rep.CapsDropped
	r.Status = map[string]string{}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(l, ":")
			switch k {
			case "CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb", "NoNewPrivs", "Seccomp":
				r.Status[k] = strings.TrimSpace(v)
			}
		}
	}
	// What the agent does keeps working.
	p := filepath.Join(os.Args[1], "alerts.json")
	if f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640); err != nil {
		r.FileErr = err.Error()
	} else {
		_, err = f.WriteString("{}\n")
		f.Close()
		if err != nil {
			r.FileErr = err.Error()
		}
	}
	if _, err := os.ReadFile("/proc/1/status"); err != nil {
		r.ProcErr = err.Error()
	}
	if lnErr != nil {
		r.HTTPErr = lnErr.Error()
	} else {
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
		resp, err := http.Post("http://"+ln.Addr().String()+"/", "application/json", strings.NewReader("{}"))
		if err != nil {
			r.HTTPErr = err.Error()
		} else {
			resp.Body.Close()
		}
	}
	// What it must not do.
	if l2, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		l2.Close()
		r.ExecErr = "listen allowed"
	} else if err := exec.Command("/bin/true").Run(); err != nil {
		r.ExecErr = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(r)
}
