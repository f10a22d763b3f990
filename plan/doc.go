// Package plan turns a detection result and the user's options into a Plan: plain data
// that says which base, which layers and which image config to build.
package plan
