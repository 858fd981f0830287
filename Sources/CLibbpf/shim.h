// libbpf (Debian's libbpf-dev) as seen by Swift.
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
