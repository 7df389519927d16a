// Registers the addon's exports; the classes live in their own files.
#include <napi.h>

#include "common.h"
#include "errors.h"
#include "link.h"
#include "map.h"
#include "object.h"
#include "packet.h"
#include "program.h"

namespace xlb {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLibbpfPrint();
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);

  Napi::Function object = BpfObject::Define(env), map = BpfMap::Define(env);
  Napi::Function program = BpfProgram::Define(env), link = Link::Define(env);
  data->objectCtor = Napi::Persistent(object);
  data->mapCtor = Napi::Persistent(map);
  data->programCtor = Napi::Persistent(program);
  data->linkCtor = Napi::Persistent(link);

  exports.Set("BpfObject", object);
  exports.Set("BpfMap", map);
  exports.Set("BpfProgram", program);
  exports.Set("Link", link);
  exports.Set("loadObject", Napi::Function::New<BpfObject::Load>(env, "loadObject"));
  exports.Set("listAttached", Napi::Function::New<Link::ListAttached>(env, "listAttached"));
  exports.Set("ifIndex", Napi::Function::New<Link::IfIndex>(env, "ifIndex"));
  exports.Set("netnsCookie", Napi::Function::New<Link::NetnsCookie>(env, "netnsCookie"));
  exports.Set("probeProgType", Napi::Function::New<BpfProgram::ProbeType>(env, "probeProgType"));
  exports.Set("probeKfunc", Napi::Function::New<BpfProgram::ProbeKfunc>(env, "probeKfunc"));
  exports.Set("possibleCpus", Napi::Function::New<BpfMap::PossibleCpus>(env, "possibleCpus"));
  exports.Set("sendFrame", Napi::Function::New<SendFrame>(env, "sendFrame"));
  exports.Set("trimMemory", Napi::Function::New<TrimMemory>(env, "trimMemory"));
  return exports;
}

}  // namespace xlb

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return xlb::Init(env, exports); }

NODE_API_MODULE(xlb, InitAddon)
