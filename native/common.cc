#include "common.h"

#include <malloc.h>
#include <sys/utsname.h>

#include <climits>
#include <cstdio>
#include <string>

namespace xlb {

std::string FdKind(int fd) {
  char link[64], target[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n < 0) return "";
  target[n] = 0;
  std::string t(target);
  const std::string prefix = "anon_inode:";
  return t.rfind(prefix, 0) == 0 ? t.substr(prefix.size()) : t;
}

Napi::Value TrimMemory(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
}

bool KernelAtLeast(int major, int minor) {
  utsname u{};
  int a = 0, b = 0;
  if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &a, &b) != 2) return true;
  return a > major || (a == major && b >= minor);
}

}  // namespace xlb
