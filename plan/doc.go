// Package plan turns a detection result and the user's options into a Plan: plain data
// that says which base, which layers, which commands make them, what history each layer
// gets, which image config to write and how to smoke-test the result.
package plan
