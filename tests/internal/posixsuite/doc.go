// Package posixsuite runs go-fuse's posixtest suite (its whole Linux
// set, posixtest.All) and file tests of its own (large sparse files,
// many open files, names, hard links, renames, shared mmap, locks,
// syncs) on the directory POSIXTEST_DIR names, one fresh subdirectory
// per test. tests/posix_test.go compiles it into a static
// test binary and runs it natively and inside runsc containers, and
// compares the outcomes.
package posixsuite

// DirEnv names the directory the suite runs in.
const DirEnv = "POSIXTEST_DIR"
