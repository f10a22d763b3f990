// Package bench holds pyship's benchmarks: Go benchmarks (go test -bench . ./bench) and
// scripts that time whole builds (build.sh).
package bench
