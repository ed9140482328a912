// Guest information through the QEMU guest agent (virDomainGetGuestInfo).
// Runs on its own thread: an unresponsive agent holds a call for libvirt's
// agent timeout, which must never block the event loop or the shared pool.
#include "domain_call.h"
#include "typed_params.h"

namespace hv {

namespace {

// (dom, types: VIR_DOMAIN_GUEST_INFO_* bits, flags) -> {field: value}, e.g. {"hostname": "g"}.
Napi::Value GetGuestInfo(const Napi::CallbackInfo& info) {
  unsigned types = info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  unsigned flags = ArgFlags(info, 2);
  return DomainCall(info, Lane::Dedicated, [types, flags](virDomainPtr d) -> Builder {
    virTypedParameterPtr params = nullptr;
    int n = 0;
    if (virDomainGetGuestInfo(d, types, &params, &n, flags) < 0) Fail("virDomainGetGuestInfo failed");
    TypedList list = CopyTypedParams(params, n);
    virTypedParamsFree(params, n);
    return [list = std::move(list)](Napi::Env env) { return TypedParamsToJs(env, list); };
  });
}

}  // namespace

void RegisterDomainGuest(Napi::Env env, Napi::Object exports) {
  exports.Set("domainGetGuestInfo", Napi::Function::New(env, GetGuestInfo));
}

}  // namespace hv
