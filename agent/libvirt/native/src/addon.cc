// Hostvisor's libvirt addon: module entry point.
#include "common.h"

namespace hv {

namespace {
// libvirt prints every error to stderr by default; errors reach JS instead.
void SilentErrorHandler(void*, virErrorPtr) {}

Napi::Value GetLibVersion(const Napi::CallbackInfo& info) {
  unsigned long v = 0;
  virGetVersion(&v, nullptr, nullptr);  // local, no connection
  return Napi::Number::New(info.Env(), static_cast<double>(v));
}
}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  if (virInitialize() < 0) throw Napi::Error::New(env, "virInitialize failed");
  virSetErrorFunc(nullptr, SilentErrorHandler);
  InitEventLoop(env);
  exports.Set("setErrorClass", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { SetErrorClass(info); }));
  exports.Set("libVersion", Napi::Function::New(env, GetLibVersion));
  RegisterConnect(env, exports);
  RegisterDomain(env, exports);
  RegisterDomainOps(env, exports);
  RegisterEvents(env, exports);
  return exports;
}

}  // namespace hv

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return hv::Init(env, exports); }

NODE_API_MODULE(hostvisor_libvirt, InitModule)
