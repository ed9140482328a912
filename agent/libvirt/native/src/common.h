// Shared declarations for the Hostvisor libvirt addon.
//
// Threading rules (see README "libvirt binding"):
//  - No libvirt call that can do I/O runs on the JS thread. Every such call
//    is a Work run on a worker thread (libuv pool, or a dedicated thread for
//    long calls) and produces a Builder that turns its copied result into JS
//    on the JS thread.
//  - libvirt errors are thread-local, so a Work reads virGetLastError() on the
//    thread that made the failing call (Fail()).
//  - No Napi object is touched off the JS thread.
#pragma once

#include <napi.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace hv {

// ---------- errors ----------

struct CapturedError {
  int code = -1;
  int domain = -1;
  int level = 2;
  std::string message;
  std::string str1, str2, str3;
  int int1 = 0, int2 = 0;
};

// Thrown on a worker thread when a libvirt call fails; carries the error that
// libvirt recorded for *this* thread.
struct VirFailure {
  CapturedError err;
};

CapturedError CaptureLastError(const char* fallback);
[[noreturn]] void Fail(const char* what);
// Builds an instance of the JS LibvirtError class registered by the facade.
Napi::Value MakeLibvirtError(Napi::Env env, const CapturedError& e);
void SetErrorClass(const Napi::CallbackInfo& info);

// ---------- async calls ----------

using Builder = std::function<Napi::Value(Napi::Env)>;
using Work = std::function<Builder()>;

enum class Lane {
  Pool,       // libuv thread pool: short calls (most of the API)
  Dedicated,  // own thread: calls that may block for seconds or minutes
};

// Queues work and returns a Promise. `keepAlive` values (handles) are held
// strongly until the call completes, so GC cannot free a virDomainPtr that a
// worker is using.
Napi::Promise Queue(Napi::Env env, Lane lane, Work work, std::vector<Napi::Value> keepAlive = {});

// Builders for common results.
Builder Undefined();
Builder String(std::string s);
Builder Int(long long v);
Napi::Value SafeInteger(Napi::Env env, unsigned long long v);
Napi::Value SafeInteger(Napi::Env env, long long v);

// ---------- handles ----------

struct ConnBox;  // defined in handles.h

Napi::Value WrapConn(Napi::Env env, virConnectPtr conn);
ConnBox* UnwrapConn(const Napi::Value& v);
// A connection reference for one call: refs the connection on the JS thread,
// and drops the ref on the worker thread, so a concurrent close() cannot free
// it under the call and the final unref (which may be an RPC) stays off the
// JS thread.
class ConnRef {
 public:
  explicit ConnRef(ConnBox* box);
  ConnRef(const ConnRef&) = delete;
  ConnRef(ConnRef&& o) noexcept : conn_(o.conn_) { o.conn_ = nullptr; }
  ~ConnRef();
  virConnectPtr get() const { return conn_; }

 private:
  virConnectPtr conn_;
};

// Captured by Work lambdas (std::function needs copyable captures); the
// last copy dies with the Work on the worker thread.
using ConnRefPtr = std::shared_ptr<ConnRef>;
ConnRefPtr RefConn(const Napi::Value& v);

Napi::Value WrapDomain(Napi::Env env, virDomainPtr dom);
virDomainPtr UnwrapDomain(const Napi::Value& v);
// Builder that wraps a domain pointer produced by a worker.
Builder DomainResult(virDomainPtr dom);
// Frees a domain on the reaper thread: the last reference to a domain can be
// the last reference to its connection, and closing that is an RPC.
void ReleaseDomainOffThread(virDomainPtr dom);

// ---------- arguments ----------

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name);
// null/undefined -> empty optional marker (has=false)
struct OptString {
  bool has = false;
  std::string value;
  const char* c_str() const { return has ? value.c_str() : nullptr; }
};
OptString ArgOptString(const Napi::CallbackInfo& info, size_t i);
unsigned int ArgFlags(const Napi::CallbackInfo& info, size_t i);
long long ArgInt64(const Napi::CallbackInfo& info, size_t i, const char* name);
unsigned long long ArgUInt64(const Napi::CallbackInfo& info, size_t i, const char* name);

// ---------- module parts ----------

void InitEventLoop(Napi::Env env);
void UnrefSubscriptions(Napi::Env env, ConnBox* box);
void RegisterConnect(Napi::Env env, Napi::Object exports);
void RegisterDomain(Napi::Env env, Napi::Object exports);
void RegisterDomainOps(Napi::Env env, Napi::Object exports);
void RegisterDomainGuest(Napi::Env env, Napi::Object exports);
void RegisterDomainSnapshot(Napi::Env env, Napi::Object exports);
void RegisterDomainBlockJob(Napi::Env env, Napi::Object exports);
void RegisterEvents(Napi::Env env, Napi::Object exports);
void RegisterSanlock(Napi::Env env, Napi::Object exports);
void RegisterProcessMemory(Napi::Env env, Napi::Object exports);

}  // namespace hv
