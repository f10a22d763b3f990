// Package layers builds a reproducible OCI image from a plan: the base, a dependency layer
// made by the base's own Python in the build sandbox, an optional build-steps layer, a
// user layer and the application layer, all written by one normalising tar writer. It runs
// the commands the plan gives and writes the history lines the plan gives: what only a
// build can know (mounts, the host's package-index settings, a retry's build-tool
// constraints or builder, the runtime libraries a source build links) is all it adds.
//
// Files the sandbox sees are extracted under the cache (rootfs.2/ for a base, trees.2/ for
// a layer, by digest) owned by the sandbox's ids (sandbox.HostID), without set-id bits or
// device nodes; cache.go describes the rest of the cache and how it is kept whole.
package layers
