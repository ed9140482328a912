// Hostvisor's libvirt addon: module entry point.
#include <dirent.h>
#include <fcntl.h>
#include <cstdlib>

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
// Marks every descriptor >= 3 close-on-exec. Node sets CLOEXEC on what it
// opens, but not on descriptors the agent inherited from whoever started it;
// without this they would leak into every hook and helper process.
Napi::Value MarkInheritedFdsCloexec(const Napi::CallbackInfo& info) {
  int marked = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return Napi::Number::New(info.Env(), -1);
  int self = dirfd(d);
  while (struct dirent* e = readdir(d)) {
    int fd = atoi(e->d_name);
    if (fd < 3 || fd == self) continue;
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC) && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == 0) marked++;
  }
  closedir(d);
  return Napi::Number::New(info.Env(), marked);
}
}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  if (virInitialize() < 0) throw Napi::Error::New(env, "virInitialize failed");
  virSetErrorFunc(nullptr, SilentErrorHandler);
  InitEventLoop(env);
  exports.Set("setErrorClass", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { SetErrorClass(info); }));
  exports.Set("libVersion", Napi::Function::New(env, GetLibVersion));
  exports.Set("markInheritedFdsCloexec", Napi::Function::New(env, MarkInheritedFdsCloexec));
  RegisterConnect(env, exports);
  RegisterDomain(env, exports);
  RegisterDomainOps(env, exports);
  RegisterDomainGuest(env, exports);
  RegisterDomainSnapshot(env, exports);
  RegisterDomainBlockJob(env, exports);
  RegisterEvents(env, exports);
  RegisterSanlock(env, exports);
  RegisterProcessMemory(env, exports);
  return exports;
}

}  // namespace hv

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return hv::Init(env, exports); }

NODE_API_MODULE(hostvisor_libvirt, InitModule)
