// Package sandbox runs a process in an image's root file system inside Linux namespaces.
package sandbox
