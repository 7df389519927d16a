// The one place where a failed libbpf call or bpf() syscall becomes a JS Error carrying
// {code, errno, op, target}; also captures libbpf's own log so load errors say why.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

namespace xlb {

// A failure recorded off the JS thread (AsyncWorker::Execute) and thrown later.
struct ErrInfo {
  int err = 0;          // positive errno, 0 when the failure is not an errno (EMISMATCH)
  std::string code;     // overrides the errno name when set
  std::string op;       // the libbpf call or syscall that failed
  std::string target;   // map / program / object / interface name
  std::string detail;   // extra context appended to the message (e.g. verifier log)
  bool set() const { return err != 0 || !code.empty(); }
};

ErrInfo Errno(int err, std::string op, std::string target, std::string detail = "");
ErrInfo Coded(std::string code, std::string op, std::string target, std::string detail);

Napi::Error MakeError(Napi::Env env, const ErrInfo& e);
[[noreturn]] void Throw(Napi::Env env, const ErrInfo& e);

// Throws when a libbpf call returned a negative error (libbpf >= 1.0 returns -errno).
inline int Check(Napi::Env env, int ret, const char* op, const std::string& target) {
  if (ret < 0) Throw(env, Errno(-ret, op, target));
  return ret;
}

// Collects libbpf's messages on this thread while alive. Concurrent loads on different
// libuv threads each see only their own messages.
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  void Append(int level, const std::string& line);
  // The last lines of the log (verifier output ends with the reason), for error messages.
  std::string Tail(size_t maxLines = 40) const;
  std::vector<std::string> warnings;

 private:
  std::vector<std::string> lines_;
  LogCapture* prev_;
};

void InstallLibbpfPrint();

}  // namespace xlb
