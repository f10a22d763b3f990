// Package publish writes a built image to a registry, an OCI layout or a tarball, and names
// it by digest.
package publish
