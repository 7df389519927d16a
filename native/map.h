// BpfMap: one kernel map behind an fd — element CRUD, batch ops (AsyncWorker), iteration,
// per-CPU values, map-in-map slots, pinning.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

#include "common.h"

struct btf;

namespace xlb {

// A BTF type's layout in one string (members' names, bit offsets, types): two maps whose key
// or value signatures differ hold their bytes differently even at the same sizes. "" for id 0.
std::string BtfLayoutSig(const btf* b, uint32_t id);

class BpfMap : public Napi::ObjectWrap<BpfMap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // Wraps an fd this call takes ownership of; `name` overrides the kernel's 15-char name.
  static Napi::Object New(Napi::Env env, int fd, const std::string& name);
  static Napi::Value PossibleCpus(const Napi::CallbackInfo& info);

  explicit BpfMap(const Napi::CallbackInfo& info);
  void CloseFd() { fd_.reset(); }
  // The fd for a call on the JS thread; throws EBADF naming the map when closed.
  int FdOrThrow(Napi::Env env, const char* op) const;
  const std::string& name() const { return name_; }

 private:
  static Napi::Value OpenPinned(const Napi::CallbackInfo& info);
  static Napi::Value FromId(const Napi::CallbackInfo& info);
  static Napi::Value Create(const Napi::CallbackInfo& info);

  Napi::Value Lookup(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value DeleteAsync(const Napi::CallbackInfo& info);
  Napi::Value UpdateBatch(const Napi::CallbackInfo& info);
  Napi::Value DeleteBatch(const Napi::CallbackInfo& info);
  Napi::Value LookupBatch(const Napi::CallbackInfo& info);
  Napi::Value Keys(const Napi::CallbackInfo& info);
  Napi::Value Entries(const Napi::CallbackInfo& info);
  Napi::Value SetInner(const Napi::CallbackInfo& info);
  Napi::Value SetInnerAsync(const Napi::CallbackInfo& info);
  Napi::Value SetInnerBatch(const Napi::CallbackInfo& info);
  Napi::Value InnerId(const Napi::CallbackInfo& info);
  Napi::Value Btf(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Unpin(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  Napi::Value GetName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }
  Napi::Value GetType(const Napi::CallbackInfo& info);
  Napi::Value GetKeySize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), keySize_); }
  Napi::Value GetValueSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), valueSize_); }
  Napi::Value GetMaxEntries(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), maxEntries_); }
  Napi::Value GetFlags(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), flags_); }
  Napi::Value GetId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), id_); }
  Napi::Value GetPercpu(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), percpu_); }
  Napi::Value GetPossibleCpus(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ncpus_); }
  Napi::Value GetClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !fd_); }

  // Bytes one value occupies in user space (per-CPU maps: one 8-byte-aligned slot per CPU).
  size_t ValueBytes() const;
  bool IsMapInMap() const;
  void CheckMapInMap(Napi::Env env, const char* op, const char* what) const;
  // An open BpfMap argument to store in this map-in-map (TypeError / EBADF otherwise).
  BpfMap* InnerArg(Napi::Env env, Napi::Value v, const char* op) const;
  const uint8_t* KeyArg(const Napi::CallbackInfo& info, size_t i, const char* op) const;
  const uint8_t* BufArg(const Napi::CallbackInfo& info, size_t i, size_t want, const char* what, const char* op) const;
  uint64_t FlagArg(const Napi::CallbackInfo& info, size_t i, const char* op) const;

  FdPtr fd_;
  std::string name_;
  uint32_t type_ = 0, keySize_ = 0, valueSize_ = 0, maxEntries_ = 0, flags_ = 0, id_ = 0;
  uint32_t ncpus_ = 1;
  bool percpu_ = false;
};

}  // namespace xlb
