/* Debian builds libbpf.a as position-independent *executable* code: its one reference to a
 * data symbol outside libbpf, `stderr` (libbpf's default printer), uses a PC-relative
 * relocation that cannot point into libc from a shared object. A hidden definition here
 * satisfies it inside xlb.node; it is set to libc's stream before any libbpf code runs
 * (libbpf only prints through our callback anyway, see errors.cc). */
#include <dlfcn.h>
#include <stdio.h>

#undef stderr
__attribute__((visibility("hidden"))) FILE *stderr;

__attribute__((constructor)) static void xlb_bind_stderr(void) {
  FILE **libc_stderr = (FILE **)dlsym(RTLD_NEXT, "stderr");
  stderr = libc_stderr ? *libc_stderr : NULL;
}
