package main

import (
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/pyship/pyship/layers"
)

// repository is what the repository's history says about the build.
type repository struct {
	// epoch is the time stamp of files and of the image: SOURCE_DATE_EPOCH, else the last
	// commit's time, else layers.DefaultEpoch.
	epoch    time.Time
	revision string
	source   string
}

func repoInfo(dir string) (repository, error) {
	info := repository{epoch: layers.DefaultEpoch}
	if git, err := exec.LookPath("git"); err == nil {
		gitOut := func(args ...string) string {
			out, err := exec.Command(git, append([]string{"-C", dir}, args...)...).Output()
			if err != nil {
				return ""
			}
			return strings.TrimSpace(string(out))
		}
		if ct, err := strconv.ParseInt(gitOut("log", "-1", "--format=%ct"), 10, 64); err == nil {
			info.epoch = time.Unix(ct, 0).UTC()
			info.revision = gitOut("rev-parse", "HEAD")
		}
		info.source = publicURL(gitOut("remote", "get-url", "origin"))
	}
	if s := os.Getenv("GITHUB_REPOSITORY"); s != "" {
		server := os.Getenv("GITHUB_SERVER_URL")
		if server == "" {
			server = "https://github.com"
		}
		info.source = server + "/" + s
	}
	if s, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); ok {
		sec, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || sec < 0 {
			return info, usagef("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", s)
		}
		info.epoch = time.Unix(sec, 0).UTC()
	}
	return info, nil
}

// publicURL strips credentials from a remote URL, and drops remotes that are local paths.
func publicURL(remote string) string {
	u, err := url.Parse(remote)
	if err != nil || u.Host == "" {
		if host, path, ok := strings.Cut(strings.TrimPrefix(remote, "git@"), ":"); ok && strings.HasPrefix(remote, "git@") {
			return "https://" + host + "/" + strings.TrimSuffix(path, ".git")
		}
		return ""
	}
	u.User = nil
	u.Scheme = "https"
	u.Path = strings.TrimSuffix(u.Path, ".git")
	return u.String()
}
