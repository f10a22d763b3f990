package sandbox

import (
	"os"
	"syscall"
)

// Every sandbox process runs in a user namespace of its own, also when pyship is root, so
// that root inside is not root outside. As root, pyship maps the sandbox's ids 0 to
// idCount-1 onto a range of host ids that no account uses, starting at idBase; files the
// sandbox reads are extracted owned by those host ids (see HostID). Without root, the only
// id pyship has is mapped, to the sandbox's user.
const (
	idBase  = 0x6a000000
	idCount = 1 << 20
)

// HostID is the host id that id inside a sandbox is, when pyship runs as root: where
// extracted image files must belong for the sandbox to see their owners. Ids past the
// mapped range are the overflow id, as the kernel shows them. Without root it is the
// caller's own id: pyship cannot give files away.
func HostID(id int) int {
	if os.Geteuid() != 0 {
		return os.Geteuid()
	}
	if id < 0 || id >= idCount {
		id = 65534
	}
	return idBase + id
}

// idMaps are the uid and gid maps of a sandbox's user namespace, for its user uid:gid.
// They are written by the process that makes the namespace, which for the sandbox's
// program is the sandbox's init; shifted says pyship runs as root on the host.
func idMaps(shifted bool, uid, gid uint32) (uids, gids []syscall.SysProcIDMap) {
	if shifted {
		return []syscall.SysProcIDMap{{ContainerID: 0, HostID: idBase, Size: idCount}},
			[]syscall.SysProcIDMap{{ContainerID: 0, HostID: idBase, Size: idCount}}
	}
	// Inside the outer user namespace pyship made, its own id is 0.
	return []syscall.SysProcIDMap{{ContainerID: int(uid), HostID: 0, Size: 1}},
		[]syscall.SysProcIDMap{{ContainerID: int(gid), HostID: 0, Size: 1}}
}

// chownToSandbox gives dir to the sandbox's root, so that it can write there.
func chownToSandbox(dir string, shifted bool) error {
	if !shifted {
		return nil
	}
	return os.Chown(dir, idBase, idBase)
}
