// Package sandbox runs a program in an image's root file system inside Linux namespaces, a
// user namespace of its own, a cgroup and a system call filter.
//
// There are two modes. Exec (build mode) runs one command, as a Dockerfile's RUN does: the
// image's file system is an overlay whose writes go to an upper directory the caller
// packs afterwards, and the network is reachable only through pyship's proxy, and only with
// ExecSpec.Egress. Boot (run mode) boots an application and hands back an App: its writes
// to the image's file system go to a size-capped tmpfs that only the sandbox's mount
// namespace holds, as a container runtime's writable layer but never on the host, the
// network is the sandbox's own loopback, and one port is published on the host's loopback;
// Smoke boots one and checks it answers.
//
// Both start the same way, through one spawn: pyship re-executes itself (argv[0]
// "pyship-sandbox-init") in new mount, pid, uts, ipc and network namespaces and, when
// pyship is root, a cgroup; without root, in a user namespace too. That init is root where
// it runs: it assembles the root file system (overlay, /proc with the kernel's knobs
// read-only and host files masked, a minimal /dev, /tmp, the caller's mounts, /etc/hosts
// and resolv.conf; every mount point resolved inside the image with openat2 RESOLVE_IN_ROOT
// and mounted on /proc/self/fd/N), pivots into it, and stays as the sandbox's pid 1: it
// forwards the published port or hands proxy connections to pyship, passes SIGTERM and
// SIGINT on, reaps, and exits with the program's status. It starts the program through the
// exec stage (argv[0] "pyship-sandbox-exec"), run from a sealed in-memory copy of pyship,
// in a new user namespace: ids 0 to 2^20-1 inside are host ids from 0x6a000000 (HostID), so
// root inside owns none of the namespaces it lives in. The exec stage, already the
// program's user, drops the capability bounding set, sets no_new_privs, installs the
// seccomp filter and executes the program in a session of its own, with stdin on /dev/null
// and only pipes.
//
// The init's descriptors, after stdin, stdout and stderr (spawn_linux.go names them):
// fdSpec (3) the initSpec as JSON; fdSetupError (4) a pipe for a setup error, which closes,
// empty, once the program runs; fdPublished (5) the published port's listener (run mode);
// fdEgress (6) a socket for proxy connections (build mode); fdExe (7) the sealed
// executable; fdTrace (8) a socket for the trace's listener (a traced program). The exec
// stage gets its own in the same way: fdStageSpec (3) the stageSpec, fdStageSetupError
// (4) the init's fdSetupError, fdStageExe (5) the init's fdExe, which it is started from,
// and fdStageTrace (6) the init's fdTrace. Every other descriptor is close-on-exec, so the
// program gets only stdin, stdout and stderr.
package sandbox
