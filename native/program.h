// BpfProgram: a loaded program's fd plus BPF_PROG_TEST_RUN (fixtures, per-packet cost,
// XDP live frames) and one pass of an iterator program (runIter).
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

#include "common.h"

namespace xlb {

class BpfProgram : public Napi::ObjectWrap<BpfProgram> {
 public:
  static Napi::Function Define(Napi::Env env);
  // Takes ownership of fd.
  static Napi::Object New(Napi::Env env, int fd, const std::string& name);
  // probeProgType(type, helperIds): what this kernel lacks of them ([] = all there).
  static Napi::Value ProbeType(const Napi::CallbackInfo& info);
  // probeKfunc(name): whether the kernel's BTF has this function (kfuncs need BTF anyway).
  static Napi::Value ProbeKfunc(const Napi::CallbackInfo& info);

  explicit BpfProgram(const Napi::CallbackInfo& info);
  void CloseFd() { fd_.reset(); }
  int FdOrThrow(Napi::Env env, const char* op) const;
  const std::string& name() const { return name_; }
  uint32_t type() const { return type_; }

 private:
  Napi::Value TestRun(const Napi::CallbackInfo& info);
  Napi::Value TestRunLive(const Napi::CallbackInfo& info);
  Napi::Value RunIter(const Napi::CallbackInfo& info);
  Napi::Value TestRunAsync(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }
  Napi::Value GetType(const Napi::CallbackInfo& info);
  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_ ? fd_->fd : -1); }
  Napi::Value GetId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), id_); }
  Napi::Value GetTag(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), tag_); }

  FdPtr fd_;
  std::string name_, tag_;
  uint32_t type_ = 0, id_ = 0;
};

}  // namespace xlb
