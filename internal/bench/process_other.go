//go:build !linux

package bench

import "os/exec"

// dieWithParent has no portable equivalent of Linux's parent-death
// signal; elsewhere bench stops its targets only when it exits normally.
func dieWithParent(*exec.Cmd) {}
