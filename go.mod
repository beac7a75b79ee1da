module github.com/runsc/runsc

go 1.26.8

require (
	github.com/elastic/go-seccomp-bpf v1.6.0
	github.com/hanwen/go-fuse/v2 v2.12.1
	github.com/hugelgupf/p9 v0.3.0
	github.com/opencontainers/runtime-spec v1.3.0
	github.com/u-root/uio v0.0.0-20230305220412-3e8cd9d6bf63
	golang.org/x/net v0.41.0
	golang.org/x/sys v0.50.0
)

replace github.com/hugelgupf/p9 => ./third_party/p9
