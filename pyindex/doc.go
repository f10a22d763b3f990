// Package pyindex asks a Python package index which Python versions a repository's pinned
// requirements can be installed on, and picks the Python version from the answer.
package pyindex
