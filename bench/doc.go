// Package bench holds pyship's benchmarks: Go benchmarks (go test -bench . ./bench) and
// scripts that time whole builds (build.sh) and compare them with buildah's on the apps in
// bench/apps (compare.sh).
package bench
