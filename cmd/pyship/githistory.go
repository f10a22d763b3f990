package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Bounds on finding when the dependency files last changed: the commits walked, and the
// bytes of all the objects read (a hostile repository's trees could be huge).
const (
	maxHistory      = 1000
	maxHistoryBytes = 256 << 20
)

// errHistory says the history ends before the answer: a shallow clone, or more commits
// than maxHistory.
var errHistory = errors.New("the history is too short or too long to tell")

// dependencyTime is the committer time of the last commit, along the first parents of
// HEAD, that changed any of files (paths relative to dir, which may lie below the work
// tree's top): the time versions the requirements leave open are resolved as of. Commits
// that change only the app keep it, and so keep the dependency layer cached. A clone too
// shallow to tell (a CI checkout of depth 1) gives the error, and the caller HEAD's time.
func dependencyTime(dir string, files []string) (time.Time, string, error) {
	g, err := openGit(dir)
	if err != nil {
		return time.Time{}, "", err
	}
	defer g.close()
	head, err := g.head()
	if err != nil {
		return time.Time{}, "", err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return time.Time{}, "", err
	}
	rel, err := filepath.Rel(g.top, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		return time.Time{}, "", fmt.Errorf("%s is outside the work tree %s", dir, g.top)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, path.Join(filepath.ToSlash(rel), f))
	}
	id, _ := hex.DecodeString(head)
	return g.lastChange(id, paths)
}

// gitCommit is what a commit says that the history walk needs.
type gitCommit struct {
	tree    []byte
	parents [][]byte
	time    time.Time
}

// historyObject reads an object for the history walk, counting its bytes against read.
func (g *gitRepo) historyObject(id []byte, read *int64) (int, []byte, error) {
	budget := int64(maxDeltaOutput)
	typ, data, err := g.object(id, 0, &budget)
	if err != nil {
		return 0, nil, err
	}
	if *read += int64(len(data)); *read > maxHistoryBytes {
		return 0, nil, errHistory
	}
	return typ, data, nil
}

// commit reads a commit object.
func (g *gitRepo) commit(id []byte, read *int64) (gitCommit, error) {
	typ, data, err := g.historyObject(id, read)
	if err != nil {
		return gitCommit{}, err
	}
	if typ != objCommit {
		return gitCommit{}, fmt.Errorf("%x is not a commit", id)
	}
	var c gitCommit
	header, _, _ := bytes.Cut(data, []byte("\n\n"))
	for _, line := range bytes.Split(header, []byte("\n")) {
		key, value, _ := bytes.Cut(line, []byte(" "))
		switch string(key) {
		case "tree":
			c.tree, err = hex.DecodeString(string(value))
		case "parent":
			var p []byte
			if p, err = hex.DecodeString(string(value)); err == nil {
				c.parents = append(c.parents, p)
			}
		}
		if err != nil || (c.tree != nil && len(c.tree) != g.hashSize) {
			return gitCommit{}, fmt.Errorf("commit %x: bad header", id)
		}
	}
	if c.tree == nil {
		return gitCommit{}, fmt.Errorf("commit %x has no tree", id)
	}
	c.time, err = committerTime(header)
	return c, err
}

// pathID is the object at p (slash-separated) in the tree with id tree, nil when there
// is none.
func (g *gitRepo) pathID(tree []byte, p string, read *int64) ([]byte, error) {
	id := tree
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		if part == "" || part == "." {
			continue
		}
		typ, data, err := g.historyObject(id, read)
		if err != nil {
			return nil, err
		}
		if typ != objTree {
			return nil, nil
		}
		id = nil
		// Entries: "MODE NAME\0" and the raw object name.
		for len(data) > 0 {
			sp := bytes.IndexByte(data, ' ')
			nul := bytes.IndexByte(data, 0)
			if sp < 0 || nul < sp || len(data) < nul+1+g.hashSize {
				return nil, fmt.Errorf("tree %x is malformed", tree)
			}
			name, entry := string(data[sp+1:nul]), data[nul+1:nul+1+g.hashSize]
			data = data[nul+1+g.hashSize:]
			if name == part {
				id = entry
				break
			}
		}
		if id == nil {
			return nil, nil
		}
	}
	return id, nil
}

// lastChange walks the first parents from head to the first commit whose paths differ
// from its parent's, and returns its time and name.
func (g *gitRepo) lastChange(head []byte, paths []string) (time.Time, string, error) {
	var read int64
	ids := func(c gitCommit) (string, error) {
		var b strings.Builder
		for _, p := range paths {
			id, err := g.pathID(c.tree, p, &read)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "%x\n", id)
		}
		return b.String(), nil
	}
	curID := head
	c, err := g.commit(head, &read)
	if err != nil {
		return time.Time{}, "", err
	}
	have, err := ids(c)
	if err != nil {
		return time.Time{}, "", err
	}
	for range maxHistory {
		if len(c.parents) == 0 {
			// The first commit made the files.
			return c.time, hex.EncodeToString(curID), nil
		}
		parent, err := g.commit(c.parents[0], &read)
		if errors.Is(err, errNotFound) {
			return time.Time{}, "", errHistory
		}
		if err != nil {
			return time.Time{}, "", err
		}
		before, err := ids(parent)
		if err != nil {
			return time.Time{}, "", err
		}
		if before != have {
			return c.time, hex.EncodeToString(curID), nil
		}
		curID, c = c.parents[0], parent
	}
	return time.Time{}, "", errHistory
}
