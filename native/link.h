// Link: XDP, tcx and cgroup attachments as bpf links (atomic update, pin, detach), plus
// listAttached/ifIndex/netnsCookie. All but cgroup links act on the calling process's
// network namespace.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

#include "common.h"

namespace xlb {

class Link : public Napi::ObjectWrap<Link> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Value ListAttached(const Napi::CallbackInfo& info);
  static Napi::Value IfIndex(const Napi::CallbackInfo& info);
  static Napi::Value NetnsCookie(const Napi::CallbackInfo& info);

  explicit Link(const Napi::CallbackInfo& info);

 private:
  struct Init;
  static Napi::Object New(Napi::Env env, Init* init);
  static Napi::Value AttachXdp(const Napi::CallbackInfo& info);
  static Napi::Value AttachTc(const Napi::CallbackInfo& info);
  static Napi::Value AttachCgroup(const Napi::CallbackInfo& info);
  static Napi::Value OpenPinned(const Napi::CallbackInfo& info);

  Napi::Value ProgId(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Unpin(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), id_); }
  Napi::Value GetIfindex(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ifindex_); }
  Napi::Value GetKind(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kind_); }
  Napi::Value GetMode(const Napi::CallbackInfo& info);
  Napi::Value GetFallback(const Napi::CallbackInfo& info);
  Napi::Value GetPinnedPath(const Napi::CallbackInfo& info);
  Napi::Value GetCgroupId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(cgroupId_)); }
  int FdOrThrow(Napi::Env env, const char* op) const;
  std::string Target() const;

  FdPtr fd_;
  uint32_t id_ = 0, ifindex_ = 0;
  uint64_t cgroupId_ = 0;
  std::string kind_, mode_, ifname_, pinned_, fallback_;
};

}  // namespace xlb
