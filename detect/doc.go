// Package detect inspects a Python repository and reports what it needs, with the file that
// said so for every fact.
package detect
