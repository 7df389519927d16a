#include "errors.h"

#include <bpf/libbpf.h>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace xlb {

namespace {
thread_local LogCapture* tlsCapture = nullptr;
constexpr size_t kMaxLines = 4000;  // verifier logs can be huge; the tail is what matters

// Kernel-internal errnos that leak out of bpf() and that glibc has no name for.
const char* KernelErrnoName(int err) {
  switch (err) {
    case 524: return "EOPNOTSUPP";  // ENOTSUPP: the map/prog type lacks this operation
    case 512: return "ERESTARTSYS";
    default: return nullptr;
  }
}

std::string ErrnoName(int err) {
  if (const char* k = KernelErrnoName(err)) return k;
  if (const char* n = strerrorname_np(err)) return n;
  return "E" + std::to_string(err);
}

int PrintFn(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (!tlsCapture) return 0;  // outside a capture nobody asked for libbpf's chatter
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  if (n < 0) return 0;
  std::string s(buf);
  while (!s.empty() && (s.back() == '\n')) s.pop_back();
  tlsCapture->Append(static_cast<int>(level), s);
  return n;
}
}  // namespace

ErrInfo Errno(int err, std::string op, std::string target, std::string detail) {
  ErrInfo e;
  e.err = err > 0 ? err : EINVAL;
  e.op = std::move(op);
  e.target = std::move(target);
  e.detail = std::move(detail);
  return e;
}

ErrInfo Coded(std::string code, std::string op, std::string target, std::string detail) {
  ErrInfo e;
  e.code = std::move(code);
  e.op = std::move(op);
  e.target = std::move(target);
  e.detail = std::move(detail);
  return e;
}

Napi::Error MakeError(Napi::Env env, const ErrInfo& e) {
  std::string code = e.code.empty() ? ErrnoName(e.err) : e.code;
  std::string msg = e.op + " '" + e.target + "': ";
  if (e.err != 0 && e.err != 524) msg += strerror(e.err);
  else if (e.err == 524) msg += "operation not supported by this map or program type";
  msg += " (" + code + ")";
  if (!e.detail.empty()) msg += (e.detail[0] == '\n' ? "" : ": ") + e.detail;
  Napi::Error err = Napi::Error::New(env, msg);
  Napi::Object o = err.Value();
  o.Set("code", code);
  if (e.err != 0) o.Set("errno", e.err);
  o.Set("op", e.op);
  o.Set("target", e.target);
  return err;
}

void Throw(Napi::Env env, const ErrInfo& e) { throw MakeError(env, e); }

LogCapture::LogCapture() : prev_(tlsCapture) { tlsCapture = this; }
LogCapture::~LogCapture() { tlsCapture = prev_; }

void LogCapture::Append(int level, const std::string& line) {
  if (level == LIBBPF_WARN) warnings.push_back(line);
  if (level == LIBBPF_DEBUG) return;  // debug lines bury the verifier's reason
  if (lines_.size() >= kMaxLines) lines_.erase(lines_.begin(), lines_.begin() + kMaxLines / 2);
  // libbpf prints the verifier log as one multi-line message; keep it line by line.
  size_t start = 0;
  while (start <= line.size()) {
    size_t nl = line.find('\n', start);
    if (nl == std::string::npos) nl = line.size();
    if (nl > start) lines_.push_back(line.substr(start, nl - start));
    start = nl + 1;
  }
}

std::string LogCapture::Tail(size_t maxLines) const {
  std::string out;
  size_t from = lines_.size() > maxLines ? lines_.size() - maxLines : 0;
  for (size_t i = from; i < lines_.size(); i++) out += "\n  " + lines_[i];
  return out;
}

void InstallLibbpfPrint() { libbpf_set_print(PrintFn); }

}  // namespace xlb
