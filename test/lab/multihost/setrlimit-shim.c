/*
 * Hostvisor multi-host lab: LD_PRELOAD shim for the sanlock daemon (lab only, never production).
 *
 * sanlock's daemon raises RLIMIT_MEMLOCK and RLIMIT_RTPRIO to unlimited at start and gives up if
 * that fails. In the lab, root lacks CAP_SYS_RESOURCE, so the kernel answers EPERM. This shim
 * makes the real call and turns an EPERM into success; every other result is passed through.
 * With `-w 0 -h 0 -l 0` (no watchdog, no RR scheduling, no mlockall) the daemon never depends on
 * the raised limits.
 *
 * Built by test/lab/multihost/lab.sh:  gcc -shared -fPIC -O2 -o setrlimit-shim.so setrlimit-shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/resource.h>

typedef int (*setrlimit_fn)(__rlimit_resource_t, const struct rlimit *);

static int forgive_eperm(setrlimit_fn real, __rlimit_resource_t resource, const struct rlimit *rlim) {
  if (real == 0) return 0;
  int saved = errno;
  int rc = real(resource, rlim);
  if (rc != 0 && errno == EPERM) {
    errno = saved;
    return 0;
  }
  return rc;
}

int setrlimit(__rlimit_resource_t resource, const struct rlimit *rlim) {
  static setrlimit_fn real;
  if (real == 0) real = (setrlimit_fn)dlsym(RTLD_NEXT, "setrlimit");
  return forgive_eperm(real, resource, rlim);
}

/* On x86_64 setrlimit64 is the same call; a binary built with _FILE_OFFSET_BITS=64 links to it. */
int setrlimit64(__rlimit_resource_t resource, const struct rlimit64 *rlim) {
  static setrlimit_fn real;
  if (real == 0) real = (setrlimit_fn)dlsym(RTLD_NEXT, "setrlimit64");
  return forgive_eperm(real, resource, (const struct rlimit *)rlim);
}
