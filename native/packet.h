// Raw link-layer frames: the agent's gratuitous ARP on takeover (node cannot open AF_PACKET
// sockets itself). Map-agnostic: the caller builds the frame.
#pragma once
#include <napi.h>

namespace xlb {

// sendFrame(ifindex, frame): one frame out of the interface, as given (destination MAC
// first); throws {code, errno, op: 'sendto', target: 'ifindex N'} on failure.
Napi::Value SendFrame(const Napi::CallbackInfo& info);

}  // namespace xlb
