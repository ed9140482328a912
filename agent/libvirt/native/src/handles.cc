// Connection and domain handles as type-tagged Externals, plus argument helpers.
#include "handles.h"

#include <condition_variable>
#include <deque>
#include <thread>

namespace hv {

static const napi_type_tag kConnTag = {0x6b1f3c2a9e4d4b10ULL, 0x8c2e7a6d5f4b3a21ULL};
static const napi_type_tag kDomTag = {0x2d7e9a1c4b3f4e55ULL, 0x91a6c3e2b7d84f09ULL};

// ---------- reaper thread ----------

namespace {
// Heap-allocated and never destroyed: a static condition variable's
// destructor would block exit() while the reaper thread waits on it.
struct Reaper {
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::function<void()>> queue;
  bool started = false;
};
Reaper& TheReaper() {
  static Reaper* r = new Reaper();
  return *r;
}
}  // namespace

void RunOffThread(std::function<void()> fn) {
  Reaper& r = TheReaper();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.queue.push_back(std::move(fn));
  if (!r.started) {
    r.started = true;
    std::thread([&r]() {
      for (;;) {
        std::function<void()> next;
        {
          std::unique_lock<std::mutex> l(r.mutex);
          r.cv.wait(l, [&r] { return !r.queue.empty(); });
          next = std::move(r.queue.front());
          r.queue.pop_front();
        }
        next();
      }
    }).detach();
  }
  r.cv.notify_one();
}

void ReleaseDomainOffThread(virDomainPtr dom) {
  RunOffThread([dom]() { virDomainFree(dom); });
}

// ---------- connections ----------

Napi::Value WrapConn(Napi::Env env, virConnectPtr conn) {
  auto* box = new ConnBox();
  box->conn = conn;
  auto ext = Napi::External<ConnBox>::New(env, box, [](Napi::Env, ConnBox* b) {
    // The facade keeps open connections reachable, so this only runs after
    // close(). A connection dropped without close() is closed on the reaper
    // thread, never here, because closing is an RPC.
    virConnectPtr c = b->conn.exchange(nullptr);
    if (c != nullptr) RunOffThread([c]() { virConnectClose(c); });
    delete b;
  });
  ext.TypeTag(&kConnTag);
  return ext;
}

ConnBox* UnwrapConn(const Napi::Value& v) {
  if (!v.IsExternal() || !v.As<Napi::External<ConnBox>>().CheckTypeTag(&kConnTag))
    throw Napi::TypeError::New(v.Env(), "expected a libvirt connection handle");
  ConnBox* box = v.As<Napi::External<ConnBox>>().Data();
  if (box->closing || box->conn == nullptr) throw Napi::Error::New(v.Env(), "libvirt connection is closed");
  return box;
}

ConnRef::ConnRef(ConnBox* box) : conn_(box->conn.load()) {
  if (conn_ != nullptr) virConnectRef(conn_);
}
ConnRef::~ConnRef() {
  if (conn_ != nullptr) virConnectClose(conn_);
}

ConnRefPtr RefConn(const Napi::Value& v) { return std::make_shared<ConnRef>(UnwrapConn(v)); }

// ---------- domains ----------

Napi::Value WrapDomain(Napi::Env env, virDomainPtr dom) {
  auto ext = Napi::External<virDomain>::New(env, dom, [](Napi::Env, virDomain* d) { ReleaseDomainOffThread(d); });
  ext.TypeTag(&kDomTag);
  return ext;
}

virDomainPtr UnwrapDomain(const Napi::Value& v) {
  if (!v.IsExternal() || !v.As<Napi::External<virDomain>>().CheckTypeTag(&kDomTag))
    throw Napi::TypeError::New(v.Env(), "expected a libvirt domain handle");
  return v.As<Napi::External<virDomain>>().Data();
}

Builder DomainResult(virDomainPtr dom) {
  // If the promise is never settled (env teardown) the pointer leaks; that is
  // preferable to freeing it while JS may still see it.
  return [dom](Napi::Env env) { return WrapDomain(env, dom); };
}

// ---------- arguments ----------

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

OptString ArgOptString(const Napi::CallbackInfo& info, size_t i) {
  OptString o;
  if (info[i].IsString()) {
    o.has = true;
    o.value = info[i].As<Napi::String>().Utf8Value();
  } else if (!info[i].IsNull() && !info[i].IsUndefined()) {
    throw Napi::TypeError::New(info.Env(), "expected a string, null or undefined");
  }
  return o;
}

unsigned int ArgFlags(const Napi::CallbackInfo& info, size_t i) {
  if (info[i].IsUndefined() || info[i].IsNull()) return 0;
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "flags must be a number");
  return info[i].As<Napi::Number>().Uint32Value();
}

long long ArgInt64(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info[i].IsBigInt()) {
    bool lossless = false;
    return info[i].As<Napi::BigInt>().Int64Value(&lossless);
  }
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number or bigint");
  return info[i].As<Napi::Number>().Int64Value();
}

unsigned long long ArgUInt64(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info[i].IsBigInt()) {
    bool lossless = false;
    return info[i].As<Napi::BigInt>().Uint64Value(&lossless);
  }
  if (!info[i].IsNumber() || info[i].As<Napi::Number>().DoubleValue() < 0)
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a non-negative number or bigint");
  return static_cast<unsigned long long>(info[i].As<Napi::Number>().DoubleValue());
}

}  // namespace hv
