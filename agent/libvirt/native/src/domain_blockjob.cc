// Block jobs: blockCommit (live merge), the job's progress, and its end
// (abort, or pivot to the new leaf for an active commit).
#include "domain_call.h"

namespace hv {

namespace {

// base/top null: libvirt's defaults (top = the active layer, base = its backing file).
Napi::Value BlockCommit(const Napi::CallbackInfo& info) {
  std::string disk = ArgString(info, 1, "disk");
  OptString base = ArgOptString(info, 2);
  OptString top = ArgOptString(info, 3);
  unsigned long bandwidth = static_cast<unsigned long>(ArgUInt64(info, 4, "bandwidth"));
  unsigned flags = ArgFlags(info, 5);
  // Starts the job and returns: the copy runs in QEMU.
  return DomainVoidCall(info, Lane::Pool, [disk, base, top, bandwidth, flags](virDomainPtr d) {
    return virDomainBlockCommit(d, disk.c_str(), base.c_str(), top.c_str(), bandwidth, flags);
  }, "virDomainBlockCommit failed");
}

// The job's figures as JS, or null when the disk has none (r == 0).
Builder JobInfoResult(int r, const virDomainBlockJobInfo& ji) {
  if (r == 0) return [](Napi::Env env) -> Napi::Value { return env.Null(); };
  return [ji](Napi::Env env) -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("type", static_cast<int>(ji.type));
    o.Set("bandwidth", SafeInteger(env, static_cast<unsigned long long>(ji.bandwidth)));
    o.Set("cur", SafeInteger(env, static_cast<unsigned long long>(ji.cur)));
    o.Set("end", SafeInteger(env, static_cast<unsigned long long>(ji.end)));
    return o;
  };
}

// Resolves null when the disk has no block job.
Napi::Value GetBlockJobInfo(const Napi::CallbackInfo& info) {
  std::string disk = ArgString(info, 1, "disk");
  return DomainCall(info, Lane::Pool, [disk, flags = ArgFlags(info, 2)](virDomainPtr d) -> Builder {
    virDomainBlockJobInfo ji{};
    int r = virDomainGetBlockJobInfo(d, disk.c_str(), &ji, flags);
    if (r < 0) Fail("virDomainGetBlockJobInfo failed");
    return JobInfoResult(r, ji);
  });
}

Napi::Value BlockJobAbort(const Napi::CallbackInfo& info) {
  std::string disk = ArgString(info, 1, "disk");
  unsigned flags = ArgFlags(info, 2);
  // Without ASYNC, a pivot waits for QEMU to switch the disk over.
  return DomainVoidCall(info, Lane::Dedicated, [disk, flags](virDomainPtr d) {
    return virDomainBlockJobAbort(d, disk.c_str(), flags);
  }, "virDomainBlockJobAbort failed");
}

}  // namespace

void RegisterDomainBlockJob(Napi::Env env, Napi::Object exports) {
  exports.Set("domainBlockCommit", Napi::Function::New(env, BlockCommit));
  exports.Set("domainGetBlockJobInfo", Napi::Function::New(env, GetBlockJobInfo));
  exports.Set("domainBlockJobAbort", Napi::Function::New(env, BlockJobAbort));
}

}  // namespace hv
