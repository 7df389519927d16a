#include "program.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "errors.h"

namespace xlb {

namespace {
struct Init {
  int fd;
  std::string name;
};

constexpr uint32_t kDefaultOutSlack = 512;  // room for programs that grow the packet

Napi::Buffer<uint8_t> BufferProp(Napi::Env env, Napi::Object o, const char* k, bool required) {
  Napi::Value v = o.Get(k);
  if (v.IsUndefined() && !required) return Napi::Buffer<uint8_t>();
  if (!v.IsBuffer()) throw Napi::TypeError::New(env, std::string(k) + " must be a Buffer");
  return v.As<Napi::Buffer<uint8_t>>();
}

uint32_t NumProp(Napi::Env env, Napi::Object o, const char* k, uint32_t dflt) {
  Napi::Value v = o.Get(k);
  if (v.IsUndefined()) return dflt;
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(k) + " must be a number");
  return v.As<Napi::Number>().Uint32Value();
}
// Keeps the calling thread on one CPU while alive, then restores its affinity: XDP and tc
// test runs execute on the caller's CPU, so per-CPU state (per-CPU maps, the flow cache)
// is then the same from one run to the next.
class CpuPin {
 public:
  CpuPin(Napi::Env env, int cpu, const std::string& target) {
    if (cpu < 0) return;
    if (sched_getaffinity(0, sizeof(saved_), &saved_) != 0) Throw(env, Errno(errno, "sched_getaffinity", target));
    if (cpu >= CPU_SETSIZE) Throw(env, Errno(EINVAL, "sched_setaffinity", target, "cpu " + std::to_string(cpu) + " out of range"));
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0) {
      Throw(env, Errno(errno, "sched_setaffinity", target, "cpu " + std::to_string(cpu) + " is not usable by this process"));
    }
    active_ = true;
  }
  ~CpuPin() {
    if (active_) sched_setaffinity(0, sizeof(saved_), &saved_);
  }
  CpuPin(const CpuPin&) = delete;
  CpuPin& operator=(const CpuPin&) = delete;

 private:
  cpu_set_t saved_{};
  bool active_ = false;
};

int CpuProp(Napi::Env env, Napi::Object o) {
  Napi::Value v = o.Get("cpu");
  if (v.IsUndefined()) return -1;
  if (!v.IsNumber()) throw Napi::TypeError::New(env, "cpu must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d != static_cast<double>(static_cast<int>(d))) throw Napi::TypeError::New(env, "cpu must be a CPU number >= 0");
  return static_cast<int>(d);
}
}  // namespace

Napi::Function BpfProgram::Define(Napi::Env env) {
  return DefineClass(env, "BpfProgram",
                     {
                         InstanceMethod<&BpfProgram::TestRun>("testRun"),
                         InstanceMethod<&BpfProgram::TestRunLive>("testRunLive"),
                         InstanceMethod<&BpfProgram::RunIter>("runIter"),
                         InstanceMethod<&BpfProgram::TestRunAsync>("testRunAsync"),
                         InstanceMethod<&BpfProgram::Close>("close"),
                         InstanceAccessor<&BpfProgram::GetName>("name"),
                         InstanceAccessor<&BpfProgram::GetType>("type"),
                         InstanceAccessor<&BpfProgram::GetFd>("fd"),
                         InstanceAccessor<&BpfProgram::GetId>("id"),
                         InstanceAccessor<&BpfProgram::GetTag>("tag"),
                     });
}

Napi::Object BpfProgram::New(Napi::Env env, int fd, const std::string& name) {
  Init init{fd, name};
  return Data(env)->programCtor.New({Napi::External<Init>::New(env, &init)});
}

BpfProgram::BpfProgram(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfProgram>(info) {
  Napi::Env env = info.Env();
  if (!IsInternalCall(info)) throw Napi::TypeError::New(env, "BpfProgram is created by BpfObject.program()");
  Init* init = info[0].As<Napi::External<Init>>().Data();
  fd_ = std::make_shared<Fd>(init->fd);
  name_ = init->name;
  bpf_prog_info pi{};
  uint32_t len = sizeof pi;
  Check(env, bpf_obj_get_info_by_fd(fd_->fd, &pi, &len), "bpf_obj_get_info_by_fd", name_);
  type_ = pi.type;
  id_ = pi.id;
  char hex[2 * BPF_TAG_SIZE + 1];
  for (int i = 0; i < BPF_TAG_SIZE; i++) snprintf(hex + 2 * i, 3, "%02x", pi.tag[i]);
  tag_ = hex;
}

Napi::Value BpfProgram::ProbeType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray())
    throw Napi::TypeError::New(env, "probeProgType(type: string, helperIds: number[])");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int type = -1;
  for (int t = 0; t < 64 && type < 0; t++) {
    const char* s = libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(t));
    if (s && name == s) type = t;
  }
  if (type < 0) Throw(env, Errno(EINVAL, "probeProgType", name, "unknown program type"));
  Napi::Array missing = Napi::Array::New(env);
  uint32_t n = 0;
  if (libbpf_probe_bpf_prog_type(static_cast<bpf_prog_type>(type), nullptr) != 1) {
    missing.Set(n++, "program type " + name);
    return missing;
  }
  Napi::Array ids = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < ids.Length(); i++) {
    uint32_t id = ids.Get(i).As<Napi::Number>().Uint32Value();
    if (libbpf_probe_bpf_helper(static_cast<bpf_prog_type>(type), static_cast<bpf_func_id>(id), nullptr) != 1)
      missing.Set(n++, "helper " + std::to_string(id));
  }
  return missing;
}

Napi::Value BpfProgram::ProbeKfunc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "probeKfunc(name: string)");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  btf* b = btf__load_vmlinux_btf();
  if (!b) return Napi::Boolean::New(env, false);
  bool found = btf__find_by_name_kind(b, name.c_str(), BTF_KIND_FUNC) > 0;
  btf__free(b);
  return Napi::Boolean::New(env, found);
}

// One pass of an iterator program (BPF_TRACE_ITER) over what it iterates in the calling
// thread's network namespace: attach, read the iterator to its end, let go. Returns the
// bytes the program wrote (0 for programs that only act).
Napi::Value BpfProgram::RunIter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "bpf_link_create(BPF_TRACE_ITER)";
  int link = bpf_link_create(FdOrThrow(env, op), 0, BPF_TRACE_ITER, nullptr);
  Check(env, link, op, name_);
  int it = bpf_iter_create(link);
  if (it < 0) {
    int err = -it;
    ::close(link);
    Throw(env, Errno(err, "bpf_iter_create", name_));
  }
  char buf[4096];
  ssize_t n, total = 0;
  while ((n = ::read(it, buf, sizeof buf)) > 0) total += n;
  int err = n < 0 ? errno : 0;
  ::close(it);
  ::close(link);
  if (err) Throw(env, Errno(err, "read(iterator)", name_));
  return Napi::Number::New(env, static_cast<double>(total));
}

namespace {

// One BPF_PROG_TEST_RUN off the JS thread, for programs run for their side effects on maps
// (the conntrack sweep, bpf/ct_sweep.c) that may take milliseconds.
class TestRunWorker : public PromiseWorker {
 public:
  TestRunWorker(Napi::Env env, FdPtr fd, std::string name, std::vector<uint8_t> data)
      : PromiseWorker(env), fd_(std::move(fd)), name_(std::move(name)), data_(std::move(data)), out_(data_.size() + 256) {}
  void Execute() override {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data_.data(), .data_out = out_.data(),
                .data_size_in = static_cast<uint32_t>(data_.size()),
                .data_size_out = static_cast<uint32_t>(out_.size()), .repeat = 1);
    int r = bpf_prog_test_run_opts(fd_->fd, &opts);
    if (r < 0) {
      err_ = Errno(-r, "bpf_prog_test_run_opts", name_);
      return;
    }
    retval_ = opts.retval;
    durationNs_ = opts.duration;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("retval", Napi::Number::New(env, static_cast<int32_t>(retval_)));
    o.Set("durationNs", Napi::Number::New(env, durationNs_));
    return o;
  }

 private:
  FdPtr fd_;
  std::string name_;
  std::vector<uint8_t> data_, out_;
  uint32_t retval_ = 0, durationNs_ = 0;
};

}  // namespace

// BPF_PROG_TEST_RUN once, in a worker thread: resolves to {retval, durationNs}.
Napi::Value BpfProgram::TestRunAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdOrThrow(env, "bpf_prog_test_run_opts");
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "options object required");
  auto data = BufferProp(env, info[0].As<Napi::Object>(), "data", true);
  std::vector<uint8_t> copy(data.Data(), data.Data() + data.Length());
  auto* w = new TestRunWorker(env, fd_, name_, std::move(copy));
  w->Queue();
  return w->Promise();
}

int BpfProgram::FdOrThrow(Napi::Env env, const char* op) const {
  if (!fd_) Throw(env, Errno(EBADF, op, name_, "program is closed"));
  return fd_->fd;
}

Napi::Value BpfProgram::GetType(const Napi::CallbackInfo& info) {
  const char* s = libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(type_));
  return Napi::String::New(info.Env(), s ? s : "type_" + std::to_string(type_));
}

Napi::Value BpfProgram::TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "bpf_prog_test_run_opts";
  int fd = FdOrThrow(env, op);
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "options object required");
  Napi::Object o = info[0].As<Napi::Object>();
  auto data = BufferProp(env, o, "data", true);
  auto ctx = BufferProp(env, o, "ctxIn", false);
  std::vector<uint8_t> out(NumProp(env, o, "dataOutSize", data.Length() + kDefaultOutSlack));
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.Data(), .data_out = out.data(),
              .data_size_in = static_cast<uint32_t>(data.Length()),
              .data_size_out = static_cast<uint32_t>(out.size()),
              .ctx_in = ctx.IsEmpty() ? nullptr : ctx.Data(),
              .ctx_size_in = ctx.IsEmpty() ? 0 : static_cast<uint32_t>(ctx.Length()),
              .repeat = static_cast<int>(NumProp(env, o, "repeat", 1)));
  {
    CpuPin pin(env, CpuProp(env, o), name_);
    Check(env, bpf_prog_test_run_opts(fd, &opts), op, name_);
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("retval", Napi::Number::New(env, opts.retval));
  r.Set("data", Napi::Buffer<uint8_t>::Copy(env, out.data(), std::min<size_t>(opts.data_size_out, out.size())));
  r.Set("durationNs", Napi::Number::New(env, opts.duration));
  return r;
}

// Frames go through the real XDP path of `ifindex` in the current netns (XDP_TX/REDIRECT
// transmit, XDP_PASS enters the stack); the kernel builds them from `data` in batches.
Napi::Value BpfProgram::TestRunLive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "bpf_prog_test_run_opts(BPF_F_TEST_XDP_LIVE_FRAMES)";
  int fd = FdOrThrow(env, op);
  if (type_ != BPF_PROG_TYPE_XDP) Throw(env, Errno(EINVAL, op, name_, "live frames need an XDP program"));
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "options object required");
  Napi::Object o = info[0].As<Napi::Object>();
  auto data = BufferProp(env, o, "data", true);
  xdp_md ctx{};
  ctx.ingress_ifindex = NumProp(env, o, "ifindex", 0);
  ctx.data_end = static_cast<uint32_t>(data.Length());  // the kernel insists it spans all of data
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.Data(),
              .data_size_in = static_cast<uint32_t>(data.Length()), .ctx_in = &ctx,
              .ctx_size_in = sizeof ctx, .repeat = static_cast<int>(NumProp(env, o, "repeat", 1)),
              .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = NumProp(env, o, "batchSize", 0));
  int r = bpf_prog_test_run_opts(fd, &opts);
  // Kernels before 5.18 reject the unknown flag with a bare EINVAL; name the real cause.
  if (r == -EINVAL && !KernelAtLeast(5, 18))
    Throw(env, Errno(EOPNOTSUPP, op, name_, "this kernel has no XDP live-frames test mode (needs 5.18)"));
  Check(env, r, op, name_);
  Napi::Object res = Napi::Object::New(env);
  res.Set("durationNs", Napi::Number::New(env, opts.duration));
  return res;
}

Napi::Value BpfProgram::Close(const Napi::CallbackInfo& info) {
  fd_.reset();
  return info.Env().Undefined();
}

}  // namespace xlb
