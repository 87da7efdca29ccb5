package overhead

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// emptyHook is a raw tracepoint program on sys_exit that returns at once
// (two instructions, no map, no helper): what any sensor hooked on the
// syscall exit costs every syscall before its program does anything — the
// kernel's syscall tracepoint path and the program dispatch. It is the
// floor under the sensor's bare hooks.
type emptyHook struct {
	prog *ebpf.Program
	l    link.Link
}

func newEmptyHook() (*emptyHook, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "dw_empty_exit",
		Type:         ebpf.RawTracepoint,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "GPL",
	})
	if err != nil {
		return nil, fmt.Errorf("empty sys_exit program: %w", err)
	}
	return &emptyHook{prog: prog}, nil
}

func (e *emptyHook) Attach() error {
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_exit", Program: e.prog})
	if err != nil {
		return fmt.Errorf("attach empty sys_exit program: %w", err)
	}
	e.l = l
	return nil
}

func (e *emptyHook) Detach() error {
	if e.l == nil {
		return nil
	}
	err := e.l.Close()
	e.l = nil
	return err
}

func (e *emptyHook) Close() error {
	return errors.Join(e.Detach(), e.prog.Close())
}
