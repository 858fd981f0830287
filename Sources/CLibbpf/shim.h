// libbpf (Debian's libbpf-dev) as seen by Swift.
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
// fanotify (Glibc's module map leaves it out): the sensor's open/exec guard.
#include <sys/fanotify.h>
