#include "link.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "errors.h"
#include "program.h"

namespace xlb {

namespace {

// Newer than the 6.1 uapi headers libbpf 1.1 is built against; values are kernel ABI.
constexpr int kTcxIngress = 46;  // BPF_TCX_INGRESS (6.6)
constexpr int kTcxEgress = 47;   // BPF_TCX_EGRESS
constexpr uint32_t kLinkTypeTcx = 11;  // BPF_LINK_TYPE_TCX

// BPF_PROG_QUERY as of 6.6, which added link ids for tcx; 6.1 headers stop at prog_attach_flags.
struct ProgQueryAttr {
  uint32_t target_ifindex;
  uint32_t attach_type;
  uint32_t query_flags;
  uint32_t attach_flags;
  uint64_t prog_ids;
  uint32_t count;
  uint32_t pad;
  uint64_t prog_attach_flags;
  uint64_t link_ids;
  uint64_t link_attach_flags;
  uint64_t revision;
};

struct LinkInfo {
  uint32_t type = 0, id = 0, progId = 0, ifindex = 0, attachType = 0;
  uint64_t cgroupId = 0;
};

// cgroup sock_addr hooks by the names the agent uses; values are kernel ABI.
const std::pair<const char*, bpf_attach_type> kCgroupHooks[] = {
    {"connect4", BPF_CGROUP_INET4_CONNECT},   {"connect6", BPF_CGROUP_INET6_CONNECT},
    {"sendmsg4", BPF_CGROUP_UDP4_SENDMSG},    {"sendmsg6", BPF_CGROUP_UDP6_SENDMSG},
    {"recvmsg4", BPF_CGROUP_UDP4_RECVMSG},    {"recvmsg6", BPF_CGROUP_UDP6_RECVMSG},
    {"getpeername4", BPF_CGROUP_INET4_GETPEERNAME}, {"getpeername6", BPF_CGROUP_INET6_GETPEERNAME},
};

const char* CgroupHookName(uint32_t attachType) {
  for (auto& [name, t] : kCgroupHooks)
    if (static_cast<uint32_t>(t) == attachType) return name;
  return nullptr;
}

int QueryLink(int fd, LinkInfo* out) {
  bpf_link_info li{};
  uint32_t len = sizeof li;
  int r = bpf_obj_get_info_by_fd(fd, &li, &len);
  if (r < 0) return r;
  // xdp {ifindex} and tcx {ifindex, attach_type} both start the per-type union.
  const uint32_t* u = reinterpret_cast<const uint32_t*>(&li.xdp);
  *out = {li.type, li.id, li.prog_id, u[0], u[1], 0};
  if (li.type == BPF_LINK_TYPE_CGROUP) *out = {li.type, li.id, li.prog_id, 0, li.cgroup.attach_type, li.cgroup.cgroup_id};
  return 0;
}

uint32_t IfIndexOrThrow(Napi::Env env, const std::string& ifname, const char* op) {
  uint32_t idx = if_nametoindex(ifname.c_str());
  if (!idx) Throw(env, Errno(ENODEV, op, ifname, "no interface '" + ifname + "' in this network namespace"));
  return idx;
}

std::string StrArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

BpfProgram* ProgArg(const Napi::CallbackInfo& info, size_t i) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsObject() ||
      !info[i].As<Napi::Object>().InstanceOf(Data(env)->programCtor.Value()))
    throw Napi::TypeError::New(env, "program must be a BpfProgram");
  return BpfProgram::Unwrap(info[i].As<Napi::Object>());
}

// XDP links carry no mode; the per-mode program ids from netlink tell which one it is.
std::string XdpModeOf(uint32_t ifindex, uint32_t progId) {
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (bpf_xdp_query(ifindex, 0, &q) < 0) return "";
  if (q.drv_prog_id == progId) return "native";
  if (q.skb_prog_id == progId) return "generic";
  return "";
}

// Every XDP link in the system (ids are global, not per netns), for matching to an ifindex.
std::vector<LinkInfo> XdpLinks() {
  std::vector<LinkInfo> out;
  uint32_t id = 0;
  while (bpf_link_get_next_id(id, &id) == 0) {
    int fd = bpf_link_get_fd_by_id(id);
    if (fd < 0) continue;  // went away meanwhile
    LinkInfo li;
    if (QueryLink(fd, &li) == 0 && li.type == BPF_LINK_TYPE_XDP) out.push_back(li);
    ::close(fd);
  }
  return out;
}

}  // namespace

struct Link::Init {
  int fd;
  std::string kind, mode, ifname, pinned, fallback;
};

Napi::Function Link::Define(Napi::Env env) {
  return DefineClass(env, "Link",
                     {
                         StaticMethod<&Link::AttachXdp>("attachXdp"),
                         StaticMethod<&Link::AttachTc>("attachTc"),
                         StaticMethod<&Link::AttachCgroup>("attachCgroup"),
                         StaticMethod<&Link::OpenPinned>("openPinned"),
                         InstanceMethod<&Link::ProgId>("progId"),
                         InstanceMethod<&Link::Update>("update"),
                         InstanceMethod<&Link::Pin>("pin"),
                         InstanceMethod<&Link::Unpin>("unpin"),
                         InstanceMethod<&Link::Detach>("detach"),
                         InstanceMethod<&Link::Close>("close"),
                         InstanceAccessor<&Link::GetId>("id"),
                         InstanceAccessor<&Link::GetIfindex>("ifindex"),
                         InstanceAccessor<&Link::GetKind>("kind"),
                         InstanceAccessor<&Link::GetMode>("mode"),
                         InstanceAccessor<&Link::GetFallback>("nativeError"),
                         InstanceAccessor<&Link::GetPinnedPath>("pinnedPath"),
                         InstanceAccessor<&Link::GetCgroupId>("cgroupId"),
                     });
}

Napi::Object Link::New(Napi::Env env, Init* init) {
  return Data(env)->linkCtor.New({Napi::External<Init>::New(env, init)});
}

Link::Link(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Link>(info) {
  Napi::Env env = info.Env();
  if (!IsInternalCall(info)) throw Napi::TypeError::New(env, "Link is created by Link.attachXdp/attachTc/openPinned");
  Init* init = info[0].As<Napi::External<Init>>().Data();
  fd_ = std::make_shared<Fd>(init->fd);
  kind_ = init->kind;
  mode_ = init->mode;
  ifname_ = init->ifname;
  pinned_ = init->pinned;
  fallback_ = init->fallback;
  LinkInfo li;
  Check(env, QueryLink(fd_->fd, &li), "bpf_obj_get_info_by_fd", Target());
  id_ = li.id;
  ifindex_ = li.ifindex;
  cgroupId_ = li.cgroupId;
  if (kind_.empty()) {  // opened from a pin: learn what it is
    const char* hook = li.type == BPF_LINK_TYPE_CGROUP ? CgroupHookName(li.attachType) : nullptr;
    if (hook) {
      kind_ = std::string("cgroup-") + hook;
    } else if (li.type == BPF_LINK_TYPE_XDP) {
      kind_ = "xdp";
      mode_ = XdpModeOf(li.ifindex, li.progId);
    } else if (li.type == kLinkTypeTcx) {
      kind_ = li.attachType == kTcxEgress ? "tc-egress" : "tc-ingress";
    } else {
      Throw(env, Errno(EINVAL, "bpf_obj_get", pinned_, "pinned link is not an XDP, tcx or cgroup sock_addr link"));
    }
  }
  if (ifname_.empty() && ifindex_) {
    char buf[IF_NAMESIZE] = {0};
    if (if_indextoname(ifindex_, buf)) ifname_ = buf;
  }
}

std::string Link::Target() const {
  std::string t = kind_ + " link";
  if (!ifname_.empty()) t += " on " + ifname_;
  else if (!pinned_.empty()) t += " " + pinned_;
  return t;
}

int Link::FdOrThrow(Napi::Env env, const char* op) const {
  if (!fd_) Throw(env, Errno(EBADF, op, Target(), "link is closed"));
  return fd_->fd;
}

Napi::Value Link::GetMode(const Napi::CallbackInfo& info) {
  return mode_.empty() ? info.Env().Undefined() : Napi::String::New(info.Env(), mode_);
}

Napi::Value Link::GetFallback(const Napi::CallbackInfo& info) {
  return fallback_.empty() ? info.Env().Undefined() : Napi::String::New(info.Env(), fallback_);
}

Napi::Value Link::GetPinnedPath(const Napi::CallbackInfo& info) {
  return pinned_.empty() ? info.Env().Undefined() : Napi::String::New(info.Env(), pinned_);
}

Napi::Value Link::AttachXdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "bpf_link_create(BPF_XDP)";
  BpfProgram* prog = ProgArg(info, 0);
  std::string ifname = StrArg(info, 1, "ifname");
  std::string mode = "auto";
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Value m = info[2].As<Napi::Object>().Get("mode");
    if (m.IsString()) mode = m.As<Napi::String>().Utf8Value();
  }
  if (mode != "auto" && mode != "native" && mode != "generic")
    Throw(env, Errno(EINVAL, op, ifname, "mode must be 'native', 'generic' or 'auto'"));
  if (prog->type() != BPF_PROG_TYPE_XDP) Throw(env, Errno(EINVAL, op, prog->name(), "not an XDP program"));
  int progFd = prog->FdOrThrow(env, op);
  uint32_t ifindex = IfIndexOrThrow(env, ifname, op);
  std::string target = prog->name() + " on " + ifname;
  Init init{-1, "xdp", "", ifname, "", ""};
  if (mode != "generic") {
    LIBBPF_OPTS(bpf_link_create_opts, o, .flags = XDP_FLAGS_DRV_MODE);
    init.fd = bpf_link_create(progFd, ifindex, BPF_XDP, &o);
    init.mode = "native";
    if (init.fd < 0 && mode == "native") Throw(env, Errno(-init.fd, op, target, "native mode"));
    if (init.fd < 0) init.fallback = strerror(-init.fd);
  }
  if (init.fd < 0) {
    LIBBPF_OPTS(bpf_link_create_opts, o, .flags = XDP_FLAGS_SKB_MODE);
    init.fd = bpf_link_create(progFd, ifindex, BPF_XDP, &o);
    init.mode = "generic";
    if (init.fd < 0)
      Throw(env, Errno(-init.fd, op, target,
                       init.fallback.empty() ? "generic mode" : "generic mode; native mode: " + init.fallback));
  }
  return New(env, &init);
}

Napi::Value Link::AttachTc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "bpf_link_create(BPF_TCX)";
  BpfProgram* prog = ProgArg(info, 0);
  std::string ifname = StrArg(info, 1, "ifname");
  std::string dir = StrArg(info, 2, "direction");
  if (dir != "ingress" && dir != "egress") Throw(env, Errno(EINVAL, op, ifname, "direction must be 'ingress' or 'egress'"));
  if (prog->type() != BPF_PROG_TYPE_SCHED_CLS) Throw(env, Errno(EINVAL, op, prog->name(), "not a tc (sched_cls) program"));
  int progFd = prog->FdOrThrow(env, op);
  uint32_t ifindex = IfIndexOrThrow(env, ifname, op);
  int type = dir == "ingress" ? kTcxIngress : kTcxEgress;
  // target_fd and target_ifindex share one slot in link_create, so libbpf 1.1 passes it through.
  int fd = bpf_link_create(progFd, ifindex, static_cast<bpf_attach_type>(type), nullptr);
  std::string target = prog->name() + " on " + ifname + " " + dir;
  if (fd == -EINVAL && !KernelAtLeast(6, 6))
    Throw(env, Errno(EOPNOTSUPP, op, target, "tcx links need kernel >= 6.6"));
  Check(env, fd, op, target);
  Init init{fd, "tc-" + dir, "", ifname, "", ""};
  return New(env, &init);
}

// A cgroup v2 directory; the link holds the cgroup, so the fd is closed after the attach.
Napi::Value Link::AttachCgroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "bpf_link_create(cgroup)";
  BpfProgram* prog = ProgArg(info, 0);
  std::string path = StrArg(info, 1, "cgroup path");
  std::string hook = StrArg(info, 2, "hook");
  const bpf_attach_type* type = nullptr;
  for (auto& [name, t] : kCgroupHooks)
    if (hook == name) type = &t;
  if (!type) Throw(env, Errno(EINVAL, op, hook, "hook must be connect4|6, sendmsg4|6, recvmsg4|6 or getpeername4|6"));
  if (prog->type() != BPF_PROG_TYPE_CGROUP_SOCK_ADDR)
    Throw(env, Errno(EINVAL, op, prog->name(), "not a cgroup sock_addr program"));
  int progFd = prog->FdOrThrow(env, op);
  int cg = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) Throw(env, Errno(errno, "open", path, "not a cgroup v2 directory"));
  int fd = bpf_link_create(progFd, cg, *type, nullptr);
  ::close(cg);
  Check(env, fd, op, prog->name() + " on cgroup " + path + " (" + hook + ")");
  Init init{fd, "cgroup-" + hook, "", "", "", ""};
  return New(env, &init);
}

Napi::Value Link::OpenPinned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StrArg(info, 0, "path");
  int fd = Check(env, bpf_obj_get(path.c_str()), "bpf_obj_get", path);
  std::string kind = FdKind(fd);
  if (kind != "bpf-link" && kind != "bpf_link") {
    ::close(fd);
    Throw(env, Errno(EINVAL, "bpf_obj_get", path, "pinned object is " + kind + ", not a link"));
  }
  Init init{fd, "", "", "", path, ""};
  return New(env, &init);
}

Napi::Value Link::ProgId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LinkInfo li;
  Check(env, QueryLink(FdOrThrow(env, "bpf_obj_get_info_by_fd"), &li), "bpf_obj_get_info_by_fd", Target());
  return Napi::Number::New(env, li.progId);
}

Napi::Value Link::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdOrThrow(env, "bpf_link_update");
  BpfProgram* prog = ProgArg(info, 0);
  Check(env, bpf_link_update(fd, prog->FdOrThrow(env, "bpf_link_update"), nullptr), "bpf_link_update",
        Target() + " -> " + prog->name());
  return env.Undefined();
}

Napi::Value Link::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdOrThrow(env, "bpf_obj_pin");
  std::string path = StrArg(info, 0, "path");
  Check(env, bpf_obj_pin(fd, path.c_str()), "bpf_obj_pin", Target() + " at " + path);
  pinned_ = path;
  return env.Undefined();
}

Napi::Value Link::Unpin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (pinned_.empty()) Throw(env, Errno(ENOENT, "unlink", Target(), "link is not pinned"));
  if (::unlink(pinned_.c_str()) < 0) Throw(env, Errno(errno, "unlink", Target() + " at " + pinned_));
  pinned_.clear();
  return env.Undefined();
}

Napi::Value Link::Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Check(env, bpf_link_detach(FdOrThrow(env, "bpf_link_detach")), "bpf_link_detach", Target());
  return env.Undefined();
}

Napi::Value Link::Close(const Napi::CallbackInfo& info) {
  fd_.reset();
  return info.Env().Undefined();
}

// ---- listAttached / ifIndex ----

namespace {

Napi::Array TcxList(Napi::Env env, uint32_t ifindex, int attachType, const std::string& ifname) {
  constexpr uint32_t kMax = 64;
  uint32_t progs[kMax] = {0}, links[kMax] = {0};
  ProgQueryAttr a{};
  a.target_ifindex = ifindex;
  a.attach_type = attachType;
  a.prog_ids = reinterpret_cast<uintptr_t>(progs);
  a.link_ids = reinterpret_cast<uintptr_t>(links);
  a.count = kMax;
  Napi::Array out = Napi::Array::New(env);
  if (syscall(__NR_bpf, BPF_PROG_QUERY, &a, sizeof a) < 0) {
    if (errno == EINVAL && !KernelAtLeast(6, 6)) return out;  // no tcx: nothing can be attached
    Throw(env, Errno(errno, "bpf(BPF_PROG_QUERY)", ifname));
  }
  for (uint32_t i = 0; i < a.count && i < kMax; i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("progId", progs[i]);
    if (links[i]) o.Set("linkId", links[i]);
    out.Set(i, o);
  }
  return out;
}

Napi::Array XdpList(Napi::Env env, uint32_t ifindex, const std::string& ifname) {
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  Check(env, bpf_xdp_query(ifindex, 0, &q), "bpf_xdp_query", ifname);
  Napi::Array out = Napi::Array::New(env);
  std::vector<LinkInfo> links;
  if (q.drv_prog_id || q.skb_prog_id) links = XdpLinks();
  uint32_t n = 0;
  // Offloaded (hw) programs are left out: no NIC here offloads and XdpMode has no name for it.
  for (auto [id, mode] : {std::pair<uint32_t, const char*>{q.drv_prog_id, "native"}, {q.skb_prog_id, "generic"}}) {
    if (!id) continue;
    Napi::Object o = Napi::Object::New(env);
    o.Set("progId", id);
    o.Set("mode", mode);
    for (auto& l : links)
      if (l.ifindex == ifindex && l.progId == id) o.Set("linkId", l.id);
    out.Set(n++, o);
  }
  return out;
}

}  // namespace

Napi::Value Link::ListAttached(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = StrArg(info, 0, "ifname");
  uint32_t ifindex = IfIndexOrThrow(env, ifname, "listAttached");
  Napi::Object r = Napi::Object::New(env);
  r.Set("ifindex", ifindex);
  r.Set("xdp", XdpList(env, ifindex, ifname));
  r.Set("tcIngress", TcxList(env, ifindex, kTcxIngress, ifname));
  r.Set("tcEgress", TcxList(env, ifindex, kTcxEgress, ifname));
  return r;
}

// SO_NETNS_COOKIE (5.14): the cookie bpf_get_netns_cookie() gives programs for this namespace.
Napi::Value Link::NetnsCookie(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  constexpr int kSoNetnsCookie = 71;
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) Throw(env, Errno(errno, "socket", "netns cookie"));
  uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  int r = ::getsockopt(s, SOL_SOCKET, kSoNetnsCookie, &cookie, &len);
  int err = errno;
  ::close(s);
  if (r < 0) Throw(env, Errno(err, "getsockopt(SO_NETNS_COOKIE)", "netns cookie", err == ENOPROTOOPT ? "needs kernel >= 5.14" : ""));
  return Napi::Number::New(env, static_cast<double>(cookie));
}

Napi::Value Link::IfIndex(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), IfIndexOrThrow(info.Env(), StrArg(info, 0, "ifname"), "if_nametoindex"));
}

}  // namespace xlb
