// BpfObject: an ELF object opened and loaded by libbpf (in an AsyncWorker), with maps
// pinned by name under a pin path and reused from it when their layout matches.
#pragma once
#include <napi.h>

#include <map>
#include <string>
#include <vector>

#include "common.h"

struct bpf_object;

namespace xlb {

struct LoadResult {
  bpf_object* obj = nullptr;
  std::string file;
  std::vector<std::string> reused, replaced, warnings;
};

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Value Load(const Napi::CallbackInfo& info);  // loadObject(file, opts)
  static Napi::Object New(Napi::Env env, LoadResult* r);   // takes r->obj

  explicit BpfObject(const Napi::CallbackInfo& info);
  ~BpfObject() override;

 private:
  Napi::Value MapNames(const Napi::CallbackInfo& info);
  Napi::Value ProgramNames(const Napi::CallbackInfo& info);
  Napi::Value Map(const Napi::CallbackInfo& info);
  Napi::Value Program(const Napi::CallbackInfo& info);
  Napi::Value BtfStruct(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetFile(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), file_); }
  Napi::Value GetReused(const Napi::CallbackInfo& info) { return Strings(info.Env(), reused_); }
  Napi::Value GetReplaced(const Napi::CallbackInfo& info) { return Strings(info.Env(), replaced_); }
  Napi::Value GetWarnings(const Napi::CallbackInfo& info) { return Strings(info.Env(), warnings_); }
  static Napi::Array Strings(Napi::Env env, const std::vector<std::string>& v);
  bpf_object* ObjOrThrow(Napi::Env env, const char* op) const;

  bpf_object* obj_ = nullptr;
  std::string file_;
  std::vector<std::string> reused_, replaced_, warnings_;
  // Handed-out wrappers, so map(name) is stable and close() closes them too.
  std::map<std::string, Napi::ObjectReference> maps_, programs_;
};

}  // namespace xlb
