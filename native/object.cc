#include "object.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <utility>

#include "errors.h"
#include "map.h"
#include "program.h"

namespace xlb {

namespace {

struct LoadOpts {
  std::string file, pinPath;
  bool replaceMismatched = false;
  // Non-empty: a replaced map's new pin goes to path + suffix, the old pin stays until the
  // caller renames the new one over it (after migrating entries and switching links).
  std::string replacedPinSuffix;
  std::vector<std::pair<std::string, uint32_t>> maxEntries;
  std::vector<std::string> skipPrograms;
};

struct Layout {
  uint32_t type, key, value, maxEntries, flags;
  bool operator==(const Layout& o) const {
    return type == o.type && key == o.key && value == o.value && maxEntries == o.maxEntries && flags == o.flags;
  }
  std::string str() const {
    const char* t = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(type));
    char buf[160];
    snprintf(buf, sizeof buf, "type=%s key=%u value=%u max_entries=%u flags=0x%x", t ? t : "?", key, value,
             maxEntries, flags);
    return buf;
  }
};

Layout WantedLayout(const bpf_map* m) {
  return {static_cast<uint32_t>(bpf_map__type(m)), bpf_map__key_size(m), bpf_map__value_size(m),
          bpf_map__max_entries(m), bpf_map__map_flags(m)};
}

// mkdir -p; bpffs accepts directories like any other filesystem.
int MakeDirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); i++) {
    if (i != path.size() && path[i] != '/') continue;
    std::string part = path.substr(0, i);
    if (::mkdir(part.c_str(), 0700) < 0 && errno != EEXIST) return -errno;
  }
  return 0;
}

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, LoadOpts o) : PromiseWorker(env), o_(std::move(o)) { res_.file = o_.file; }
  ~LoadWorker() override {
    if (res_.obj) bpf_object__close(res_.obj);  // never handed to JS (error or env teardown)
  }

  void Execute() override {
    LogCapture cap;
    res_.obj = bpf_object__open_file(o_.file.c_str(), nullptr);
    if (!res_.obj) {
      err_ = Errno(errno, "bpf_object__open_file", o_.file, cap.Tail(10));
      return;
    }
    // Pinning is ours: LIBBPF_PIN_BY_NAME would make libbpf pin (and reuse) under its
    // default /sys/fs/bpf whatever pinPath says, so clear that before load.
    bpf_map* pm;
    bpf_object__for_each_map(pm, res_.obj) bpf_map__set_pin_path(pm, nullptr);
    if (!ApplyMaxEntries() || !SkipPrograms() || (!o_.pinPath.empty() && !PreparePins())) return;
    int r = bpf_object__load(res_.obj);
    if (r < 0) {
      err_ = Errno(-r, "bpf_object__load", o_.file, cap.Tail());
      return;
    }
    if (!PinNew()) return;
    res_.warnings = cap.warnings;
  }

  Napi::Value Result(Napi::Env env) override { return BpfObject::New(env, &res_); }

 private:
  bool ApplyMaxEntries() {
    for (auto& [name, n] : o_.maxEntries) {
      bpf_map* m = bpf_object__find_map_by_name(res_.obj, name.c_str());
      if (!m) {
        err_ = Errno(ENOENT, "bpf_object__find_map_by_name", name, "maxEntries names no map in " + o_.file);
        return false;
      }
      int r = bpf_map__set_max_entries(m, n);
      if (r < 0) {
        err_ = Errno(-r, "bpf_map__set_max_entries", name);
        return false;
      }
    }
    return true;
  }

  // Programs this kernel cannot load (the caller probed): left out, the rest loads.
  bool SkipPrograms() {
    for (auto& name : o_.skipPrograms) {
      bpf_program* p = bpf_object__find_program_by_name(res_.obj, name.c_str());
      int r = p ? bpf_program__set_autoload(p, false) : -ENOENT;
      if (r < 0) {
        err_ = Errno(-r, "bpf_program__set_autoload", name, p ? "" : "skipPrograms names no program in " + o_.file);
        return false;
      }
    }
    return true;
  }

  // Decide per map: reuse the pinned one, replace it, or fail; nothing on disk changes
  // until the load succeeded.
  bool PreparePins() {
    int r = MakeDirs(o_.pinPath);
    if (r < 0) {
      err_ = Errno(-r, "mkdir", o_.pinPath);
      return false;
    }
    bpf_map* m;
    bpf_object__for_each_map(m, res_.obj) {
      if (bpf_map__is_internal(m)) continue;  // .data/.rodata/.bss belong to one load
      std::string name = bpf_map__name(m), path = o_.pinPath + "/" + name;
      int fd = bpf_obj_get(path.c_str());
      if (fd == -ENOENT) {
        toPin_.emplace_back(m, path);
        continue;
      }
      if (fd < 0) {
        err_ = Errno(-fd, "bpf_obj_get", name + " at " + path);
        return false;
      }
      bool ok = ReuseOrReplace(m, fd, name, path);
      ::close(fd);
      if (!ok) return false;
    }
    return true;
  }

  bool ReuseOrReplace(bpf_map* m, int fd, const std::string& name, const std::string& path) {
    bpf_map_info mi{};
    uint32_t len = sizeof mi;
    if (FdKind(fd) != "bpf-map") {
      err_ = Errno(EINVAL, "bpf_obj_get", name + " at " + path, "pinned object is not a map");
      return false;
    }
    int r = bpf_obj_get_info_by_fd(fd, &mi, &len);
    if (r < 0) {
      err_ = Errno(-r, "bpf_obj_get_info_by_fd", name + " at " + path);
      return false;
    }
    Layout have{mi.type, mi.key_size, mi.value_size, mi.max_entries, mi.map_flags}, want = WantedLayout(m);
    std::string btfChange = have == want ? BtfChange(m, mi) : "";
    if (have == want && btfChange.empty()) {
      r = bpf_map__reuse_fd(m, fd);
      if (r < 0) {
        err_ = Errno(-r, "bpf_map__reuse_fd", name);
        return false;
      }
      res_.reused.push_back(name);
      return true;
    }
    if (!o_.replaceMismatched) {
      err_ = Coded("EMISMATCH", "reuse pinned map", name,
                   "map '" + name + "' pinned at " + path + " has " + have.str() + ", object " + o_.file +
                       " wants " + want.str() + btfChange + " (pass replaceMismatched to replace it)");
      return false;
    }
    res_.replaced.push_back(name);
    if (!o_.replacedPinSuffix.empty()) {
      // a stale one a crashed start left behind goes first
      unpinFirst_.push_back(path + o_.replacedPinSuffix);
      toPin_.emplace_back(m, path + o_.replacedPinSuffix);
      return true;
    }
    unpinFirst_.push_back(path);
    toPin_.emplace_back(m, path);
    return true;
  }

  // Same sizes, another struct (a field moved or renamed): told apart by the pinned map's own
  // BTF against the object's. "" when equal or when either side has no BTF (reused as before).
  std::string BtfChange(bpf_map* m, const bpf_map_info& mi) {
    const btf* nb = bpf_object__btf(res_.obj);
    uint32_t nk = bpf_map__btf_key_type_id(m), nv = bpf_map__btf_value_type_id(m);
    if (!nb || nv == 0 || mi.btf_id == 0 || mi.btf_value_type_id == 0) return "";
    btf* ob = btf__load_from_kernel_by_id(mi.btf_id);
    if (!ob) return "";
    bool same = BtfLayoutSig(ob, mi.btf_value_type_id) == BtfLayoutSig(nb, nv) &&
                (nk == 0 || mi.btf_key_type_id == 0 || BtfLayoutSig(ob, mi.btf_key_type_id) == BtfLayoutSig(nb, nk));
    btf__free(ob);
    return same ? "" : " (same sizes, but its BTF key/value struct differs)";
  }

  bool PinNew() {
    for (auto& path : unpinFirst_) {
      if (::unlink(path.c_str()) < 0 && errno != ENOENT) {
        err_ = Errno(errno, "unlink", path);
        return false;
      }
    }
    for (auto& [m, path] : toPin_) {
      int r = bpf_obj_pin(bpf_map__fd(m), path.c_str());
      if (r < 0) {
        err_ = Errno(-r, "bpf_obj_pin", std::string(bpf_map__name(m)) + " at " + path);
        return false;
      }
    }
    return true;
  }

  LoadOpts o_;
  LoadResult res_;
  std::vector<std::pair<bpf_map*, std::string>> toPin_;
  std::vector<std::string> unpinFirst_;
};

LoadOpts ParseLoadOpts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LoadOpts o;
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "file must be a string");
  o.file = info[0].As<Napi::String>().Utf8Value();
  if (info.Length() < 2 || info[1].IsUndefined()) return o;
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object opts = info[1].As<Napi::Object>();
  Napi::Value pin = opts.Get("pinPath");
  if (pin.IsString()) o.pinPath = pin.As<Napi::String>().Utf8Value();
  while (o.pinPath.size() > 1 && o.pinPath.back() == '/') o.pinPath.pop_back();
  o.replaceMismatched = opts.Get("replaceMismatched").ToBoolean();
  Napi::Value suffix = opts.Get("replacedPinSuffix");
  if (suffix.IsString()) o.replacedPinSuffix = suffix.As<Napi::String>().Utf8Value();
  if (o.replacedPinSuffix.find_first_of("/.") != std::string::npos)
    throw Napi::TypeError::New(env, "replacedPinSuffix must not contain '/' or '.' (bpffs refuses dotted names)");
  Napi::Value me = opts.Get("maxEntries");
  if (me.IsObject()) {
    Napi::Object m = me.As<Napi::Object>();
    Napi::Array names = m.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); i++) {
      std::string k = names.Get(i).As<Napi::String>().Utf8Value();
      Napi::Value v = m.Get(k);
      if (!v.IsNumber()) throw Napi::TypeError::New(env, "maxEntries." + k + " must be a number");
      o.maxEntries.emplace_back(k, v.As<Napi::Number>().Uint32Value());
    }
  }
  Napi::Value skip = opts.Get("skipPrograms");
  if (skip.IsArray()) {
    Napi::Array a = skip.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) o.skipPrograms.push_back(a.Get(i).ToString().Utf8Value());
  }
  return o;
}

int DupFd(int fd) { return fcntl(fd, F_DUPFD_CLOEXEC, 3); }

}  // namespace

Napi::Function BpfObject::Define(Napi::Env env) {
  return DefineClass(env, "BpfObject",
                     {
                         InstanceMethod<&BpfObject::MapNames>("mapNames"),
                         InstanceMethod<&BpfObject::ProgramNames>("programNames"),
                         InstanceMethod<&BpfObject::Map>("map"),
                         InstanceMethod<&BpfObject::Program>("program"),
                         InstanceMethod<&BpfObject::BtfStruct>("btfStruct"),
                         InstanceMethod<&BpfObject::Close>("close"),
                         InstanceAccessor<&BpfObject::GetFile>("file"),
                         InstanceAccessor<&BpfObject::GetReused>("reused"),
                         InstanceAccessor<&BpfObject::GetReplaced>("replaced"),
                         InstanceAccessor<&BpfObject::GetWarnings>("warnings"),
                     });
}

Napi::Value BpfObject::Load(const Napi::CallbackInfo& info) {
  auto* w = new LoadWorker(info.Env(), ParseLoadOpts(info));
  w->Queue();
  return w->Promise();
}

Napi::Object BpfObject::New(Napi::Env env, LoadResult* r) {
  return Data(env)->objectCtor.New({Napi::External<LoadResult>::New(env, r)});
}

BpfObject::BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
  if (!IsInternalCall(info)) throw Napi::TypeError::New(info.Env(), "BpfObject is created by loadObject()");
  LoadResult* r = info[0].As<Napi::External<LoadResult>>().Data();
  obj_ = std::exchange(r->obj, nullptr);
  file_ = r->file;
  reused_ = r->reused;
  replaced_ = r->replaced;
  warnings_ = r->warnings;
}

BpfObject::~BpfObject() {
  if (obj_) bpf_object__close(obj_);
}

Napi::Array BpfObject::Strings(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) a.Set(i, v[i]);
  return a;
}

bpf_object* BpfObject::ObjOrThrow(Napi::Env env, const char* op) const {
  if (!obj_) Throw(env, Errno(EBADF, op, file_, "object is closed"));
  return obj_;
}

Napi::Value BpfObject::MapNames(const Napi::CallbackInfo& info) {
  bpf_object* obj = ObjOrThrow(info.Env(), "mapNames");
  std::vector<std::string> names;
  bpf_map* m;
  bpf_object__for_each_map(m, obj) names.push_back(bpf_map__name(m));
  return Strings(info.Env(), names);
}

Napi::Value BpfObject::ProgramNames(const Napi::CallbackInfo& info) {
  bpf_object* obj = ObjOrThrow(info.Env(), "programNames");
  std::vector<std::string> names;
  bpf_program* p;
  bpf_object__for_each_program(p, obj) names.push_back(bpf_program__name(p));
  return Strings(info.Env(), names);
}

Napi::Value BpfObject::Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* obj = ObjOrThrow(env, "map");
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "map name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  auto it = maps_.find(name);
  if (it != maps_.end()) return it->second.Value();
  bpf_map* m = bpf_object__find_map_by_name(obj, name.c_str());
  if (!m) Throw(env, Errno(ENOENT, "bpf_object__find_map_by_name", name, "no map '" + name + "' in " + file_));
  int fd = DupFd(bpf_map__fd(m));
  if (fd < 0) Throw(env, Errno(errno, "dup", name));
  Napi::Object o = BpfMap::New(env, fd, name);
  maps_[name] = Napi::Persistent(o);
  return o;
}

Napi::Value BpfObject::Program(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* obj = ObjOrThrow(env, "program");
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "program name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  auto it = programs_.find(name);
  if (it != programs_.end()) return it->second.Value();
  bpf_program* p = bpf_object__find_program_by_name(obj, name.c_str());
  if (!p) Throw(env, Errno(ENOENT, "bpf_object__find_program_by_name", name, "no program '" + name + "' in " + file_));
  int fd = DupFd(bpf_program__fd(p));
  if (fd < 0) Throw(env, Errno(errno, "dup", name));
  Napi::Object o = BpfProgram::New(env, fd, name);
  programs_[name] = Napi::Persistent(o);
  return o;
}

Napi::Value BpfObject::BtfStruct(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* obj = ObjOrThrow(env, "btfStruct");
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "struct name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  btf* b = bpf_object__btf(obj);
  if (!b) Throw(env, Errno(ENOENT, "bpf_object__btf", file_, "object has no BTF (build with -g)"));
  int id = btf__find_by_name_kind(b, name.c_str(), BTF_KIND_STRUCT);
  if (id < 0) Throw(env, Errno(ENOENT, "btf__find_by_name_kind", name, "no struct '" + name + "' in " + file_));
  const btf_type* t = btf__type_by_id(b, id);
  Napi::Array members = Napi::Array::New(env);
  const btf_member* m = btf_members(t);
  for (uint16_t i = 0; i < btf_vlen(t); i++, m++) {
    Napi::Object mo = Napi::Object::New(env);
    mo.Set("name", btf__name_by_offset(b, m->name_off));
    mo.Set("offset", btf_member_bit_offset(t, i) / 8);
    mo.Set("size", Napi::Number::New(env, static_cast<double>(btf__resolve_size(b, m->type))));
    members.Set(i, mo);
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("name", name);
  r.Set("size", t->size);
  r.Set("members", members);
  return r;
}

Napi::Value BpfObject::Close(const Napi::CallbackInfo& info) {
  for (auto& [_, ref] : maps_) BpfMap::Unwrap(ref.Value())->CloseFd();
  for (auto& [_, ref] : programs_) BpfProgram::Unwrap(ref.Value())->CloseFd();
  maps_.clear();
  programs_.clear();
  if (obj_) bpf_object__close(obj_);
  obj_ = nullptr;
  return info.Env().Undefined();
}

}  // namespace xlb
