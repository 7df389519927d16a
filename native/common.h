// Shared plumbing for the ObjectWrap classes: an fd that outlives close() while an async
// batch still uses it, and the per-addon constructor table.
#pragma once
#include <napi.h>
#include <unistd.h>

#include <memory>
#include <string>

namespace xlb {

// Owning fd. close() on a JS object drops its shared_ptr; the fd itself is closed when
// the last user (e.g. a running AsyncWorker) lets go, so the number is never reused under it.
struct Fd {
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int fd;
};
using FdPtr = std::shared_ptr<Fd>;

struct AddonData {
  Napi::FunctionReference objectCtor;
  Napi::FunctionReference mapCtor;
  Napi::FunctionReference programCtor;
  Napi::FunctionReference linkCtor;
};

inline AddonData* Data(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

// Kind of bpf object behind an fd, from its anon inode name ("bpf-map", "bpf_link", ...).
std::string FdKind(int fd);

// Hands the free pages of every malloc arena back to the kernel (glibc malloc_trim); true if
// any memory was released. The AsyncWorkers' batch buffers are freed on libuv's threads, into
// per-thread arenas glibc otherwise keeps: tens of MB after a full sync of 10,000 Services.
Napi::Value TrimMemory(const Napi::CallbackInfo& info);

// For naming "kernel too old" instead of the bare EINVAL old kernels give for new features.
bool KernelAtLeast(int major, int minor);

// Objects are built from C++ only; the constructor receives this marker so `new X()`
// from JS fails with a clear TypeError instead of producing a half-made object.
inline bool IsInternalCall(const Napi::CallbackInfo& info) {
  return info.Length() == 1 && info[0].IsExternal();
}

}  // namespace xlb

#include "errors.h"

namespace xlb {

// AsyncWorker that settles a Promise. Execute() records failures in err_ (never JS values);
// OnOK() turns them into the same Error shape the synchronous calls throw.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  virtual Napi::Value Result(Napi::Env env) = 0;
  // Extra properties on the rejection (e.g. how far a batch got before it failed).
  virtual void Annotate(Napi::Object err) {}
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (err_.set()) {
      Napi::Object e = MakeError(env, err_).Value();
      Annotate(e);
      deferred_.Reject(e);
      return;
    }
    try {
      deferred_.Resolve(Result(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  ErrInfo err_;

 private:
  Napi::Promise::Deferred deferred_;
};

}  // namespace xlb
