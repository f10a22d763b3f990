// Package layers builds a reproducible OCI image from a plan: the base, a dependency layer
// made by the base's own Python, a user layer and the application layer.
package layers
