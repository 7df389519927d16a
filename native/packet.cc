#include "packet.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "errors.h"

namespace xlb {

Napi::Value SendFrame(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBuffer())
    throw Napi::TypeError::New(env, "sendFrame(ifindex: number, frame: Buffer)");
  int64_t ifindex = info[0].As<Napi::Number>().Int64Value();
  auto frame = info[1].As<Napi::Buffer<uint8_t>>();
  std::string target = "ifindex " + std::to_string(ifindex);
  if (ifindex <= 0 || ifindex > INT32_MAX) Throw(env, Errno(EINVAL, "sendFrame", target, "bad ifindex"));
  if (frame.Length() < ETH_HLEN || frame.Length() > ETH_FRAME_LEN)
    Throw(env, Errno(EINVAL, "sendFrame", target, "a frame is 14..1514 bytes"));
  // Protocol 0: a socket that only sends (it receives nothing, so nothing queues up on it).
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) Throw(env, Errno(errno, "socket(AF_PACKET)", target));
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(ifindex);
  to.sll_halen = ETH_ALEN;
  std::memcpy(to.sll_addr, frame.Data(), ETH_ALEN);
  ssize_t n = sendto(fd, frame.Data(), frame.Length(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  int err = errno;
  close(fd);
  if (n < 0) Throw(env, Errno(err, "sendto", target));
  return Napi::Number::New(env, static_cast<double>(n));
}

}  // namespace xlb
