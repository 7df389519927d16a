#include "map.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "errors.h"

namespace xlb {

namespace {

constexpr int kENOTSUPP = 524;  // kernel-internal "no such op for this map type"

bool IsPercpuType(uint32_t t) {
  return t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_PERCPU_ARRAY ||
         t == BPF_MAP_TYPE_LRU_PERCPU_HASH || t == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

bool NoBatchOp(int ret) { return ret == -kENOTSUPP || ret == -EOPNOTSUPP; }

std::string MapTypeName(uint32_t t) {
  const char* s = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(t));
  return s ? s : "type_" + std::to_string(t);
}

// Map type names are libbpf's own ("hash", "lru_hash", ...); unknown names are an error.
bool MapTypeFromName(const std::string& name, bpf_map_type* out) {
  for (int t = 0; t < 256; t++) {
    const char* s = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(t));
    if (!s) break;
    if (name == s) {
      *out = static_cast<bpf_map_type>(t);
      return true;
    }
  }
  return false;
}

std::string Basename(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

struct Init {
  int fd;
  std::string name;
};

Napi::Buffer<uint8_t> Copy(Napi::Env env, const uint8_t* p, size_t n) {
  return Napi::Buffer<uint8_t>::Copy(env, p, n);
}

std::string StrArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

// Iterates all keys with BPF_MAP_GET_NEXT_KEY; returns 0 or -errno.
int ForEachKey(int fd, size_t keySize, std::vector<uint8_t>* out) {
  std::vector<uint8_t> prev(keySize), next(keySize);
  const void* cur = nullptr;
  for (;;) {
    int r = bpf_map_get_next_key(fd, cur, next.data());
    if (r == -ENOENT) return 0;
    if (r < 0) return r;
    out->insert(out->end(), next.begin(), next.end());
    prev.swap(next);
    cur = prev.data();
  }
}

}  // namespace

// ---- batch workers: copies of the caller's buffers, so JS may reuse them at once ----

class UpdateBatchWorker : public PromiseWorker {
 public:
  UpdateBatchWorker(Napi::Env env, FdPtr fd, std::string name, const uint8_t* k, size_t kl,
                    const uint8_t* v, size_t vl, uint32_t count, size_t ks, size_t vs, uint64_t flags)
      : PromiseWorker(env), fd_(std::move(fd)), name_(std::move(name)), keys_(k, k + kl),
        values_(v, v + vl), count_(count), ks_(ks), vs_(vs), flags_(flags) {}

  void Execute() override {
    // The batch syscall takes no BPF_NOEXIST/BPF_EXIST (only BPF_F_LOCK), so those loop.
    if (flags_ != BPF_ANY) return Loop();
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    uint32_t n = count_;
    int r = count_ ? bpf_map_update_batch(fd_->fd, keys_.data(), values_.data(), &n, &opts) : 0;
    if (r == 0) {
      done_ = count_;
      return;
    }
    if (NoBatchOp(r)) return Loop();
    err_ = Errno(-r, "bpf_map_update_batch", name_,
                 "failed after " + std::to_string(n) + " of " + std::to_string(count_) + " entries");
    done_ = n;
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, done_); }

 private:
  void Loop() {
    for (uint32_t i = 0; i < count_; i++) {
      int r = bpf_map_update_elem(fd_->fd, &keys_[i * ks_], &values_[i * vs_], flags_);
      if (r < 0) {
        err_ = Errno(-r, "bpf_map_update_elem", name_, "failed at entry " + std::to_string(i) +
                                                           " of " + std::to_string(count_));
        return;
      }
      done_ = i + 1;
    }
  }
  FdPtr fd_;
  std::string name_;
  std::vector<uint8_t> keys_, values_;
  uint32_t count_;
  size_t ks_, vs_;
  uint64_t flags_;
  uint32_t done_ = 0;
};

class DeleteBatchWorker : public PromiseWorker {
 public:
  DeleteBatchWorker(Napi::Env env, FdPtr fd, std::string name, const uint8_t* k, size_t kl,
                    uint32_t count, size_t ks)
      : PromiseWorker(env), fd_(std::move(fd)), name_(std::move(name)), keys_(k, k + kl),
        count_(count), ks_(ks) {}

  // Absent keys are skipped rather than failing the batch, so the result is "how many
  // of these keys were present and are now gone".
  void Execute() override {
    uint32_t pos = 0;
    while (pos < count_) {
      LIBBPF_OPTS(bpf_map_batch_opts, opts);
      uint32_t n = count_ - pos;
      int r = bpf_map_delete_batch(fd_->fd, &keys_[pos * ks_], &n, &opts);
      if (r == 0) {
        deleted_ += n;
        return;
      }
      if (NoBatchOp(r)) return DeleteLoop(pos);
      if (r != -ENOENT) {
        err_ = Errno(-r, "bpf_map_delete_batch", name_);
        return;
      }
      deleted_ += n;
      pos += n + 1;
    }
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, deleted_); }

 private:
  void DeleteLoop(uint32_t from) {
    for (uint32_t i = from; i < count_; i++) {
      int r = bpf_map_delete_elem(fd_->fd, &keys_[i * ks_]);
      if (r == -ENOENT) continue;
      if (r < 0) {
        err_ = Errno(-r, "bpf_map_delete_elem", name_, "at entry " + std::to_string(i));
        return;
      }
      deleted_++;
    }
  }
  FdPtr fd_;
  std::string name_;
  std::vector<uint8_t> keys_;
  uint32_t count_;
  size_t ks_;
  uint32_t deleted_ = 0;
};

class LookupBatchWorker : public PromiseWorker {
 public:
  LookupBatchWorker(Napi::Env env, FdPtr fd, std::string name, size_t ks, size_t vs, uint32_t max)
      : PromiseWorker(env), fd_(std::move(fd)), name_(std::move(name)), ks_(ks), vs_(vs), max_(max) {}

  void Execute() override {
    int r = Batched();
    if (NoBatchOp(r) && total_ == 0) r = Iterated();
    if (r < 0) err_ = Errno(-r, "bpf_map_lookup_batch", name_);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("keys", Copy(env, keys_.data(), total_ * ks_));
    o.Set("values", Copy(env, values_.data(), total_ * vs_));
    o.Set("count", Napi::Number::New(env, total_));
    return o;
  }

 private:
  int Batched() {
    // Hash maps hand out whole buckets: a chunk smaller than a bucket gets ENOSPC.
    uint32_t chunk = std::clamp<uint32_t>(max_, 1, 4096);
    size_t tok = std::max<size_t>(ks_, 8);
    std::vector<uint8_t> in(tok), out(tok);
    bool first = true;
    for (;;) {
      keys_.resize((total_ + chunk) * ks_);
      values_.resize((total_ + chunk) * vs_);
      LIBBPF_OPTS(bpf_map_batch_opts, opts);
      uint32_t n = chunk;
      int r = bpf_map_lookup_batch(fd_->fd, first ? nullptr : in.data(), out.data(),
                                   &keys_[total_ * ks_], &values_[total_ * vs_], &n, &opts);
      if (r == -ENOSPC && n == 0 && chunk < (1u << 20)) {
        chunk *= 2;
        continue;
      }
      if (r < 0 && r != -ENOENT) return r;
      total_ += n;
      if (r == -ENOENT) return 0;  // end of map
      in.swap(out);
      first = false;
    }
  }
  int Iterated() {
    std::vector<uint8_t> keys;
    int r = ForEachKey(fd_->fd, ks_, &keys);
    if (r < 0) return r;
    size_t n = keys.size() / ks_;
    keys_.resize(n * ks_);
    values_.resize(n * vs_);
    total_ = 0;
    for (size_t i = 0; i < n; i++) {
      r = bpf_map_lookup_elem(fd_->fd, &keys[i * ks_], &values_[total_ * vs_]);
      if (r == -ENOENT) continue;  // deleted while iterating
      if (r < 0) return r;
      memcpy(&keys_[total_ * ks_], &keys[i * ks_], ks_);
      total_++;
    }
    return 0;
  }
  FdPtr fd_;
  std::string name_;
  size_t ks_, vs_;
  uint32_t max_;
  std::vector<uint8_t> keys_, values_;
  uint32_t total_ = 0;
};

// ---- async element ops. An update or delete on a map-in-map returns only after an RCU
// grace period (the kernel makes sure no program still runs with the old inner map), ~10 ms
// of sleeping that must not hold the JS thread. Several in flight overlap their waits. ----

class SetInnerWorker : public PromiseWorker {
 public:
  // `names` are the inner maps' names, for naming the one that failed.
  SetInnerWorker(Napi::Env env, FdPtr outer, std::string name, const uint8_t* k, size_t ks,
                 std::vector<FdPtr> inners, std::vector<std::string> names, bool single)
      : PromiseWorker(env), outer_(std::move(outer)), name_(std::move(name)),
        keys_(k, k + ks * inners.size()), ks_(ks), inners_(std::move(inners)),
        names_(std::move(names)), single_(single) {}

  void Execute() override {
    std::vector<uint32_t> fds;
    for (const FdPtr& f : inners_) fds.push_back(f->fd);
    uint32_t count = fds.size();
    if (!single_ && count > 1) {
      // One BPF_MAP_UPDATE_BATCH: the kernel waits for the grace period once per batch.
      LIBBPF_OPTS(bpf_map_batch_opts, opts);
      uint32_t n = count;
      int r = bpf_map_update_batch(outer_->fd, keys_.data(), fds.data(), &n, &opts);
      if (r == 0) {
        done_ = count;
        return;
      }
      if (!NoBatchOp(r)) {
        done_ = n;
        err_ = Errno(-r, "bpf_map_update_batch", Target(n),
                     "failed after " + std::to_string(n) + " of " + std::to_string(count) + " entries");
        return;
      }
    }
    for (uint32_t i = 0; i < count; i++) {
      int r = bpf_map_update_elem(outer_->fd, &keys_[i * ks_], &fds[i], BPF_ANY);
      if (r < 0) {
        err_ = Errno(-r, "bpf_map_update_elem", Target(i),
                     single_ ? "" : "failed at entry " + std::to_string(i) + " of " + std::to_string(count));
        return;
      }
      done_ = i + 1;
    }
  }
  Napi::Value Result(Napi::Env env) override {
    return single_ ? env.Undefined() : Napi::Number::New(env, done_);
  }
  void Annotate(Napi::Object err) override {
    if (!single_) err.Set("done", Napi::Number::New(err.Env(), done_));
  }

 private:
  std::string Target(uint32_t i) const { return name_ + "[" + (i < names_.size() ? names_[i] : "") + "]"; }
  FdPtr outer_;
  std::string name_;
  std::vector<uint8_t> keys_;
  size_t ks_;
  std::vector<FdPtr> inners_;  // held so the fds stay open until the kernel has them
  std::vector<std::string> names_;
  bool single_;
  uint32_t done_ = 0;
};

class DeleteWorker : public PromiseWorker {
 public:
  DeleteWorker(Napi::Env env, FdPtr fd, std::string name, const uint8_t* k, size_t ks)
      : PromiseWorker(env), fd_(std::move(fd)), name_(std::move(name)), key_(k, k + ks) {}

  void Execute() override {
    int r = bpf_map_delete_elem(fd_->fd, key_.data());
    if (r == -ENOENT) return;
    if (r < 0) err_ = Errno(-r, "bpf_map_delete_elem", name_);
    else found_ = true;
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Boolean::New(env, found_); }

 private:
  FdPtr fd_;
  std::string name_;
  std::vector<uint8_t> key_;
  bool found_ = false;
};

// ---- class setup ----

Napi::Function BpfMap::Define(Napi::Env env) {
  return DefineClass(
      env, "BpfMap",
      {
          StaticMethod<&BpfMap::OpenPinned>("openPinned"),
          StaticMethod<&BpfMap::FromId>("fromId"),
          StaticMethod<&BpfMap::Create>("create"),
          InstanceMethod<&BpfMap::Lookup>("lookup"),
          InstanceMethod<&BpfMap::Update>("update"),
          InstanceMethod<&BpfMap::Delete>("delete"),
          InstanceMethod<&BpfMap::DeleteAsync>("deleteAsync"),
          InstanceMethod<&BpfMap::UpdateBatch>("updateBatch"),
          InstanceMethod<&BpfMap::DeleteBatch>("deleteBatch"),
          InstanceMethod<&BpfMap::LookupBatch>("lookupBatch"),
          InstanceMethod<&BpfMap::Keys>("keys"),
          InstanceMethod<&BpfMap::Entries>("entries"),
          InstanceMethod<&BpfMap::SetInner>("setInner"),
          InstanceMethod<&BpfMap::SetInnerAsync>("setInnerAsync"),
          InstanceMethod<&BpfMap::SetInnerBatch>("setInnerBatch"),
          InstanceMethod<&BpfMap::InnerId>("innerId"),
          InstanceMethod<&BpfMap::Btf>("btf"),
          InstanceMethod<&BpfMap::Pin>("pin"),
          InstanceMethod<&BpfMap::Unpin>("unpin"),
          InstanceMethod<&BpfMap::Close>("close"),
          InstanceAccessor<&BpfMap::GetName>("name"),
          InstanceAccessor<&BpfMap::GetType>("type"),
          InstanceAccessor<&BpfMap::GetKeySize>("keySize"),
          InstanceAccessor<&BpfMap::GetValueSize>("valueSize"),
          InstanceAccessor<&BpfMap::GetMaxEntries>("maxEntries"),
          InstanceAccessor<&BpfMap::GetFlags>("flags"),
          InstanceAccessor<&BpfMap::GetId>("id"),
          InstanceAccessor<&BpfMap::GetPercpu>("percpu"),
          InstanceAccessor<&BpfMap::GetPossibleCpus>("possibleCpus"),
          InstanceAccessor<&BpfMap::GetClosed>("closed"),
      });
}

Napi::Object BpfMap::New(Napi::Env env, int fd, const std::string& name) {
  Init init{fd, name};
  return Data(env)->mapCtor.New({Napi::External<Init>::New(env, &init)});
}

BpfMap::BpfMap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfMap>(info) {
  Napi::Env env = info.Env();
  if (!IsInternalCall(info))
    throw Napi::TypeError::New(env, "BpfMap is created by BpfObject.map(), BpfMap.openPinned/fromId/create");
  Init* init = info[0].As<Napi::External<Init>>().Data();
  fd_ = std::make_shared<Fd>(init->fd);
  name_ = init->name;
  bpf_map_info mi{};
  uint32_t len = sizeof mi;
  Check(env, bpf_obj_get_info_by_fd(fd_->fd, &mi, &len), "bpf_obj_get_info_by_fd", name_);
  if (name_.empty()) name_ = mi.name;
  type_ = mi.type;
  keySize_ = mi.key_size;
  valueSize_ = mi.value_size;
  maxEntries_ = mi.max_entries;
  flags_ = mi.map_flags;
  id_ = mi.id;
  percpu_ = IsPercpuType(type_);
  int n = libbpf_num_possible_cpus();
  ncpus_ = n > 0 ? n : 1;
}

Napi::Value BpfMap::PossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) Throw(info.Env(), Errno(-n, "libbpf_num_possible_cpus", "/sys/devices/system/cpu/possible"));
  return Napi::Number::New(info.Env(), n);
}

Napi::Value BpfMap::GetType(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), MapTypeName(type_));
}

size_t BpfMap::ValueBytes() const {
  return percpu_ ? static_cast<size_t>(ncpus_) * ((valueSize_ + 7) & ~7u) : valueSize_;
}

bool BpfMap::IsMapInMap() const {
  return type_ == BPF_MAP_TYPE_ARRAY_OF_MAPS || type_ == BPF_MAP_TYPE_HASH_OF_MAPS;
}

int BpfMap::FdOrThrow(Napi::Env env, const char* op) const {
  if (!fd_) Throw(env, Errno(EBADF, op, name_, "map is closed"));
  return fd_->fd;
}

const uint8_t* BpfMap::BufArg(const Napi::CallbackInfo& info, size_t i, size_t want, const char* what,
                              const char* op) const {
  if (info.Length() <= i || !info[i].IsBuffer())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a Buffer");
  auto b = info[i].As<Napi::Buffer<uint8_t>>();
  if (b.Length() != want)
    Throw(info.Env(), Errno(EINVAL, op, name_,
                            std::string(what) + " is " + std::to_string(b.Length()) + " bytes, map '" +
                                name_ + "' expects " + std::to_string(want)));
  return b.Data();
}

const uint8_t* BpfMap::KeyArg(const Napi::CallbackInfo& info, size_t i, const char* op) const {
  return BufArg(info, i, keySize_, "key", op);
}

uint64_t BpfMap::FlagArg(const Napi::CallbackInfo& info, size_t i, const char* op) const {
  if (info.Length() <= i || info[i].IsUndefined()) return BPF_ANY;
  std::string f = info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  if (f == "any") return BPF_ANY;
  if (f == "noexist") return BPF_NOEXIST;
  if (f == "exist") return BPF_EXIST;
  Throw(info.Env(), Errno(EINVAL, op, name_, "update flag must be 'any', 'noexist' or 'exist'"));
}

// ---- statics ----

Napi::Value BpfMap::OpenPinned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StrArg(info, 0, "path");
  int fd = Check(env, bpf_obj_get(path.c_str()), "bpf_obj_get", path);
  std::string kind = FdKind(fd);
  if (kind != "bpf-map") {
    ::close(fd);
    Throw(env, Errno(EINVAL, "bpf_obj_get", path, "pinned object is " + kind + ", not a map"));
  }
  bpf_map_info mi{};
  uint32_t len = sizeof mi;
  std::string name = Basename(path);
  // The kernel keeps 15 chars of a name; the pin usually has the full one.
  if (bpf_obj_get_info_by_fd(fd, &mi, &len) == 0 && name.rfind(mi.name, 0) != 0) name = mi.name;
  return New(env, fd, name);
}

Napi::Value BpfMap::FromId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "id must be a number");
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  int fd = Check(env, bpf_map_get_fd_by_id(id), "bpf_map_get_fd_by_id", "map id " + std::to_string(id));
  return New(env, fd, "");
}

Napi::Value BpfMap::Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "options object required");
  Napi::Object o = info[0].As<Napi::Object>();
  auto num = [&](const char* k, bool required) -> uint32_t {
    Napi::Value v = o.Get(k);
    if (v.IsUndefined() && !required) return 0;
    if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(k) + " must be a number");
    return v.As<Napi::Number>().Uint32Value();
  };
  std::string typeName = o.Get("type").IsString() ? o.Get("type").As<Napi::String>().Utf8Value() : "";
  std::string name = o.Get("name").IsString() ? o.Get("name").As<Napi::String>().Utf8Value() : "";
  bpf_map_type type;
  if (!MapTypeFromName(typeName, &type))
    Throw(env, Errno(EINVAL, "bpf_map_create", name.empty() ? typeName : name,
                     "unknown map type '" + typeName + "'"));
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = num("flags", false));
  int fd = bpf_map_create(type, name.empty() ? nullptr : name.substr(0, 15).c_str(), num("keySize", true),
                          num("valueSize", true), num("maxEntries", true), &opts);
  Check(env, fd, "bpf_map_create", name.empty() ? typeName : name);
  return New(env, fd, name);
}

// ---- element ops ----

Napi::Value BpfMap::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdOrThrow(env, "bpf_map_lookup_elem");
  const uint8_t* key = KeyArg(info, 0, "bpf_map_lookup_elem");
  std::vector<uint8_t> val(ValueBytes());
  int r = bpf_map_lookup_elem(fd, key, val.data());
  if (r == -ENOENT) return env.Null();
  Check(env, r, "bpf_map_lookup_elem", name_);
  return Copy(env, val.data(), val.size());
}

Napi::Value BpfMap::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdOrThrow(env, "bpf_map_update_elem");
  const uint8_t* key = KeyArg(info, 0, "bpf_map_update_elem");
  const uint8_t* val = BufArg(info, 1, ValueBytes(), "value", "bpf_map_update_elem");
  Check(env, bpf_map_update_elem(fd, key, val, FlagArg(info, 2, "bpf_map_update_elem")),
        "bpf_map_update_elem", name_);
  return env.Undefined();
}

Napi::Value BpfMap::Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdOrThrow(env, "bpf_map_delete_elem");
  int r = bpf_map_delete_elem(fd, KeyArg(info, 0, "bpf_map_delete_elem"));
  if (r == -ENOENT) return Napi::Boolean::New(env, false);
  Check(env, r, "bpf_map_delete_elem", name_);
  return Napi::Boolean::New(env, true);
}

Napi::Value BpfMap::DeleteAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "bpf_map_delete_elem";
  FdOrThrow(env, op);
  auto* w = new DeleteWorker(env, fd_, name_, KeyArg(info, 0, op), keySize_);
  w->Queue();
  return w->Promise();
}

// ---- batch ops ----

Napi::Value BpfMap::UpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "bpf_map_update_batch";
  FdOrThrow(env, op);
  if (info.Length() < 3 || !info[2].IsNumber()) throw Napi::TypeError::New(env, "count must be a number");
  uint32_t count = info[2].As<Napi::Number>().Uint32Value();
  const uint8_t* k = BufArg(info, 0, size_t(count) * keySize_, "keys", op);
  const uint8_t* v = BufArg(info, 1, size_t(count) * ValueBytes(), "values", op);
  auto* w = new UpdateBatchWorker(env, fd_, name_, k, size_t(count) * keySize_, v,
                                  size_t(count) * ValueBytes(), count, keySize_, ValueBytes(),
                                  FlagArg(info, 3, op));
  w->Queue();
  return w->Promise();
}

Napi::Value BpfMap::DeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "bpf_map_delete_batch";
  FdOrThrow(env, op);
  if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(env, "count must be a number");
  uint32_t count = info[1].As<Napi::Number>().Uint32Value();
  const uint8_t* k = BufArg(info, 0, size_t(count) * keySize_, "keys", op);
  auto* w = new DeleteBatchWorker(env, fd_, name_, k, size_t(count) * keySize_, count, keySize_);
  w->Queue();
  return w->Promise();
}

Napi::Value BpfMap::LookupBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdOrThrow(env, "bpf_map_lookup_batch");
  auto* w = new LookupBatchWorker(env, fd_, name_, keySize_, ValueBytes(), maxEntries_);
  w->Queue();
  return w->Promise();
}

// ---- iteration ----

Napi::Value BpfMap::Keys(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdOrThrow(env, "bpf_map_get_next_key");
  std::vector<uint8_t> keys;
  Check(env, ForEachKey(fd, keySize_, &keys), "bpf_map_get_next_key", name_);
  size_t n = keySize_ ? keys.size() / keySize_ : 0;
  Napi::Array out = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; i++) out.Set(i, Copy(env, &keys[i * keySize_], keySize_));
  return out;
}

Napi::Value BpfMap::Entries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdOrThrow(env, "bpf_map_get_next_key");
  std::vector<uint8_t> keys;
  Check(env, ForEachKey(fd, keySize_, &keys), "bpf_map_get_next_key", name_);
  size_t n = keySize_ ? keys.size() / keySize_ : 0;
  Napi::Array out = Napi::Array::New(env);
  std::vector<uint8_t> val(ValueBytes());
  uint32_t j = 0;
  for (size_t i = 0; i < n; i++) {
    int r = bpf_map_lookup_elem(fd, &keys[i * keySize_], val.data());
    if (r == -ENOENT) continue;  // deleted since the key walk
    Check(env, r, "bpf_map_lookup_elem", name_);
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Copy(env, &keys[i * keySize_], keySize_));
    pair.Set(1u, Copy(env, val.data(), val.size()));
    out.Set(j++, pair);
  }
  return out;
}

// ---- map-in-map ----

BpfMap* BpfMap::InnerArg(Napi::Env env, Napi::Value v, const char* op) const {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(Data(env)->mapCtor.Value()))
    throw Napi::TypeError::New(env, "inner must be a BpfMap");
  BpfMap* inner = Unwrap(v.As<Napi::Object>());
  inner->FdOrThrow(env, op);
  return inner;
}

void BpfMap::CheckMapInMap(Napi::Env env, const char* op, const char* what) const {
  if (!IsMapInMap())
    Throw(env, Errno(EINVAL, op, name_, std::string(what) + " needs an array_of_maps or hash_of_maps"));
}

Napi::Value BpfMap::SetInnerAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "bpf_map_update_elem";
  FdOrThrow(env, op);
  CheckMapInMap(env, op, "setInnerAsync");
  const uint8_t* key = KeyArg(info, 0, op);
  BpfMap* inner = InnerArg(env, info.Length() > 1 ? info[1] : env.Undefined(), op);
  auto* w = new SetInnerWorker(env, fd_, name_, key, keySize_, {inner->fd_}, {inner->name_}, true);
  w->Queue();
  return w->Promise();
}

Napi::Value BpfMap::SetInnerBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "bpf_map_update_batch";
  FdOrThrow(env, op);
  CheckMapInMap(env, op, "setInnerBatch");
  if (info.Length() < 2 || !info[1].IsArray()) throw Napi::TypeError::New(env, "inners must be an array of BpfMap");
  Napi::Array arr = info[1].As<Napi::Array>();
  std::vector<FdPtr> fds;
  std::vector<std::string> names;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    BpfMap* inner = InnerArg(env, arr.Get(i), op);
    fds.push_back(inner->fd_);
    names.push_back(inner->name_);
  }
  const uint8_t* keys = BufArg(info, 0, fds.size() * keySize_, "keys", op);
  auto* w = new SetInnerWorker(env, fd_, name_, keys, keySize_, std::move(fds), std::move(names), false);
  w->Queue();
  return w->Promise();
}

Napi::Value BpfMap::SetInner(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "bpf_map_update_elem";
  int fd = FdOrThrow(env, op);
  CheckMapInMap(env, op, "setInner");
  const uint8_t* key = KeyArg(info, 0, op);
  BpfMap* inner = InnerArg(env, info.Length() > 1 ? info[1] : env.Undefined(), op);
  uint32_t innerFd = inner->fd_->fd;
  Check(env, bpf_map_update_elem(fd, key, &innerFd, BPF_ANY), op, name_ + "[" + inner->name_ + "]");
  return env.Undefined();
}

Napi::Value BpfMap::InnerId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "bpf_map_lookup_elem";
  int fd = FdOrThrow(env, op);
  CheckMapInMap(env, op, "innerId");
  uint32_t id = 0;
  int r = bpf_map_lookup_elem(fd, KeyArg(info, 0, op), &id);
  if (r == -ENOENT) return env.Null();
  Check(env, r, op, name_);
  return Napi::Number::New(env, id);
}

// ---- BTF (migration of a map whose layout changed) ----

namespace {

// A type's description for compatibility checks: kind and name through typedefs/modifiers,
// arrays as "elem[n]". Two members are copied only when these strings are equal.
std::string TypeSig(const btf* b, uint32_t id) {
  const btf_type* t = btf__type_by_id(b, id);
  if (!t) return "?";
  switch (btf_kind(t)) {
    case BTF_KIND_TYPEDEF:
    case BTF_KIND_VOLATILE:
    case BTF_KIND_CONST:
    case BTF_KIND_RESTRICT:
    case BTF_KIND_TYPE_TAG:
      return TypeSig(b, t->type);
    case BTF_KIND_INT:
      return std::string(btf_int_encoding(t) & BTF_INT_SIGNED ? "s" : "u") + std::to_string(t->size * 8);
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
      return "enum" + std::to_string(t->size * 8);
    case BTF_KIND_ARRAY: {
      const struct btf_array* a = btf_array(t);
      return TypeSig(b, a->type) + "[" + std::to_string(a->nelems) + "]";
    }
    case BTF_KIND_STRUCT:
      return std::string("struct ") + btf__name_by_offset(b, t->name_off) + "/" + std::to_string(t->size);
    case BTF_KIND_UNION:
      return std::string("union ") + btf__name_by_offset(b, t->name_off) + "/" + std::to_string(t->size);
    case BTF_KIND_PTR:
      return "ptr";
    default:
      return "kind" + std::to_string(btf_kind(t));
  }
}

Napi::Value TypeInfo(Napi::Env env, const btf* b, uint32_t id) {
  if (id == 0) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  const btf_type* t = btf__type_by_id(b, id);
  while (t && (btf_is_typedef(t) || btf_is_mod(t))) t = btf__type_by_id(b, t->type);
  o.Set("type", TypeSig(b, id));
  o.Set("size", Napi::Number::New(env, static_cast<double>(btf__resolve_size(b, id))));
  Napi::Array members = Napi::Array::New(env);
  if (t && btf_is_struct(t)) {
    const btf_member* m = btf_members(t);
    for (uint16_t i = 0; i < btf_vlen(t); i++, m++) {
      Napi::Object mo = Napi::Object::New(env);
      uint32_t bits = btf_member_bit_offset(t, i);
      mo.Set("name", btf__name_by_offset(b, m->name_off));
      mo.Set("offset", bits / 8);
      mo.Set("size", Napi::Number::New(env, static_cast<double>(btf__resolve_size(b, m->type))));
      mo.Set("type", TypeSig(b, m->type));
      mo.Set("bitfield", Napi::Boolean::New(env, btf_member_bitfield_size(t, i) != 0 || bits % 8 != 0));
      members.Set(members.Length(), mo);
    }
  }
  o.Set("members", members);
  return o;
}

}  // namespace

std::string BtfLayoutSig(const btf* b, uint32_t id) {
  if (!b || id == 0) return "";
  const btf_type* t = btf__type_by_id(b, id);
  while (t && (btf_is_typedef(t) || btf_is_mod(t))) t = btf__type_by_id(b, t->type);
  std::string sig = TypeSig(b, id);
  if (!t || !btf_is_composite(t)) return sig;
  const btf_member* m = btf_members(t);
  for (uint16_t i = 0; i < btf_vlen(t); i++, m++) {
    sig += ";";
    sig += btf__name_by_offset(b, m->name_off);
    sig += "@" + std::to_string(btf_member_bit_offset(t, i)) + ":" + TypeSig(b, m->type);
  }
  return sig;
}

// The key and value types from the map's own BTF (the kernel keeps it with the map, so a
// pinned map left by another build still describes itself); null when the map has none.
Napi::Value BpfMap::Btf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdOrThrow(env, "btf");
  bpf_map_info mi{};
  uint32_t len = sizeof mi;
  Check(env, bpf_obj_get_info_by_fd(fd, &mi, &len), "bpf_obj_get_info_by_fd", name_);
  if (mi.btf_id == 0 || mi.btf_value_type_id == 0) return env.Null();
  btf* b = btf__load_from_kernel_by_id(mi.btf_id);
  if (!b) Throw(env, Errno(errno, "btf__load_from_kernel_by_id", name_));
  Napi::Object o = Napi::Object::New(env);
  o.Set("key", TypeInfo(env, b, mi.btf_key_type_id));
  o.Set("value", TypeInfo(env, b, mi.btf_value_type_id));
  btf__free(b);
  return o;
}

// ---- pinning / lifetime ----

Napi::Value BpfMap::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdOrThrow(env, "bpf_obj_pin");
  std::string path = StrArg(info, 0, "path");
  Check(env, bpf_obj_pin(fd, path.c_str()), "bpf_obj_pin", name_ + " at " + path);
  return env.Undefined();
}

Napi::Value BpfMap::Unpin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StrArg(info, 0, "path");
  if (::unlink(path.c_str()) < 0) Throw(env, Errno(errno, "unlink", name_ + " at " + path));
  return env.Undefined();
}

Napi::Value BpfMap::Close(const Napi::CallbackInfo& info) {
  fd_.reset();
  return info.Env().Undefined();
}

}  // namespace xlb
