// Command sudo stands in for sudo on GitHub's hosted runners, where the runner user may run
// any command as root without a password. The action's test installs it setuid root, usable
// by the runner's group only, for as long as the test runs.
//
// Like sudo with Debian's and the runner image's sudoers, it looks the command up in, and
// sets PATH to, secure_path; -E keeps the rest of the caller's environment, and without it
// the environment is reset.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const securePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func main() {
	args := os.Args[1:]
	keep := false
flags:
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-E", "--preserve-env":
			keep = true
		case "-n", "--non-interactive":
		case "--":
			args = args[1:]
			break flags
		default:
			fail("unsupported option %s", args[0])
		}
		args = args[1:]
	}
	if len(args) == 0 {
		fail("usage: sudo [-E] [-n] [--] COMMAND [ARG...]")
	}
	uid, gid := os.Getuid(), os.Getgid()
	if err := syscall.Setgroups(nil); err != nil {
		fail("not installed setuid root: %v", err)
	}
	if err := syscall.Setresgid(0, 0, 0); err != nil {
		fail("%v", err)
	}
	if err := syscall.Setresuid(0, 0, 0); err != nil {
		fail("%v", err)
	}
	var env []string
	if keep {
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "PATH=") {
				env = append(env, kv)
			}
		}
	} else {
		env = []string{"HOME=/root", "LOGNAME=root", "USER=root", "SHELL=/bin/bash"}
		if term, ok := os.LookupEnv("TERM"); ok {
			env = append(env, "TERM="+term)
		}
	}
	env = append(env, "PATH="+securePath, "SUDO_UID="+strconv.Itoa(uid), "SUDO_GID="+strconv.Itoa(gid), "SUDO_COMMAND="+strings.Join(args, " "))
	path := args[0]
	if !strings.Contains(path, "/") {
		found := ""
		for _, dir := range filepath.SplitList(securePath) {
			if p := filepath.Join(dir, path); isExecutable(p) {
				found = p
				break
			}
		}
		if found == "" {
			fail("%s: command not found", path)
		}
		path = found
	}
	if err := syscall.Exec(path, args, env); err != nil {
		fail("%s: %v", path, err)
	}
}

func isExecutable(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "sudo (stand-in): "+format+"\n", a...)
	os.Exit(1)
}
