// Connection calls: open/close, keepalive, the close callback ("disconnected"),
// and host information.
#include "handles.h"
#include "typed_params.h"

namespace hv {

namespace {

struct CloseReason {
  int reason;
};

void OnConnClosed(virConnectPtr, int reason, void* opaque) {
  // libvirt's event thread: hand off and return at once.
  auto* box = static_cast<ConnBox*>(opaque);
  box->closeCb.NonBlockingCall(new CloseReason{reason}, [](Napi::Env env, Napi::Function fn, CloseReason* r) {
    int reason = r->reason;
    delete r;
    if (env == nullptr || fn.IsEmpty()) return;
    try {
      fn.Call({Napi::Number::New(env, reason)});
    } catch (const Napi::Error& e) {
      // A throwing listener must not take the daemon down.
      fprintf(stderr, "hostvisor: close callback threw: %s\n", e.Message().c_str());
    }
  });
}

void OnCloseCbFree(void* opaque) {
  auto* box = static_cast<ConnBox*>(opaque);
  box->closeCb.Release();
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  OptString uri = ArgOptString(info, 0);
  bool readOnly = info[1].ToBoolean().Value();
  return Queue(info.Env(), Lane::Pool, [uri, readOnly]() -> Builder {
    virConnectPtr c = readOnly ? virConnectOpenReadOnly(uri.c_str()) : virConnectOpen(uri.c_str());
    if (c == nullptr) Fail("virConnectOpen failed");
    return [c](Napi::Env env) { return WrapConn(env, c); };
  });
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  ConnBox* box = UnwrapConn(info[0]);
  box->closing = true;
  UnrefSubscriptions(info.Env(), box);
  virConnectPtr c = box->conn.exchange(nullptr);
  bool unregister;
  {
    std::lock_guard<std::mutex> lock(box->closeCbMutex);
    unregister = box->closeCbRegistered;
    box->closeCbRegistered = false;
  }
  // Keep the External (and so `box`, the close callback's opaque) alive
  // until the close has finished.
  return Queue(info.Env(), Lane::Pool, [c, unregister]() -> Builder {
    if (unregister && virConnectUnregisterCloseCallback(c, OnConnClosed) < 0) virResetLastError();
    int refs = virConnectClose(c);
    if (refs < 0) Fail("virConnectClose failed");
    return Int(refs);
  }, {info[0]});
}

Napi::Value SetCloseCallback(const Napi::CallbackInfo& info) {
  ConnBox* box = UnwrapConn(info[0]);
  if (!info[1].IsFunction()) throw Napi::TypeError::New(info.Env(), "callback must be a function");
  {
    std::lock_guard<std::mutex> lock(box->closeCbMutex);
    if (box->closeCbRegistered) throw Napi::Error::New(info.Env(), "close callback already registered");
    box->closeCbRegistered = true;
  }
  box->closeCb = Napi::ThreadSafeFunction::New(info.Env(), info[1].As<Napi::Function>(), "hostvisor.libvirt.close", 0, 1);
  // An open connection alone must not keep Node running.
  box->closeCb.Unref(info.Env());
  auto ref = std::make_shared<ConnRef>(box);
  return Queue(info.Env(), Lane::Pool, [ref, box]() -> Builder {
    if (virConnectRegisterCloseCallback(ref->get(), OnConnClosed, box, OnCloseCbFree) < 0) {
      CapturedError e = CaptureLastError("virConnectRegisterCloseCallback failed");
      {
        std::lock_guard<std::mutex> lock(box->closeCbMutex);
        box->closeCbRegistered = false;
      }
      box->closeCb.Release();
      throw VirFailure{e};
    }
    return Undefined();
  }, {info[0]});
}

Napi::Value SetKeepAlive(const Napi::CallbackInfo& info) {
  auto ref = RefConn(info[0]);
  int interval = info[1].As<Napi::Number>().Int32Value();
  unsigned count = info[2].As<Napi::Number>().Uint32Value();
  return Queue(info.Env(), Lane::Pool, [ref, interval, count]() -> Builder {
    int rc = virConnectSetKeepAlive(ref->get(), interval, count);
    if (rc < 0) Fail("virConnectSetKeepAlive failed");
    return Int(rc);  // 1 = the remote side does not support keepalive
  });
}

Napi::Value IsAlive(const Napi::CallbackInfo& info) {
  // A local check of the connection's state, no RPC: safe on the JS thread.
  ConnBox* box = UnwrapConn(info[0]);
  int rc = virConnectIsAlive(box->conn.load());
  if (rc < 0) virResetLastError();
  return Napi::Boolean::New(info.Env(), rc == 1);
}

// A call that returns a malloc'd string which we own.
template <typename F>
Napi::Value StringCall(const Napi::CallbackInfo& info, F fn, const char* what) {
  auto ref = RefConn(info[0]);
  return Queue(info.Env(), Lane::Pool, [ref, fn, what]() -> Builder {
    char* s = fn(ref->get());
    if (s == nullptr) Fail(what);
    std::string copy(s);
    free(s);
    return String(std::move(copy));
  });
}

Napi::Value GetHostname(const Napi::CallbackInfo& info) {
  return StringCall(info, [](virConnectPtr c) { return virConnectGetHostname(c); }, "virConnectGetHostname failed");
}
Napi::Value GetCapabilities(const Napi::CallbackInfo& info) {
  return StringCall(info, [](virConnectPtr c) { return virConnectGetCapabilities(c); }, "virConnectGetCapabilities failed");
}
Napi::Value GetURI(const Napi::CallbackInfo& info) {
  return StringCall(info, [](virConnectPtr c) { return virConnectGetURI(c); }, "virConnectGetURI failed");
}

Napi::Value GetDomainCapabilities(const Napi::CallbackInfo& info) {
  OptString emulator = ArgOptString(info, 1), arch = ArgOptString(info, 2), machine = ArgOptString(info, 3),
            virttype = ArgOptString(info, 4);
  unsigned flags = ArgFlags(info, 5);
  return StringCall(info, [=](virConnectPtr c) {
    return virConnectGetDomainCapabilities(c, emulator.c_str(), arch.c_str(), machine.c_str(), virttype.c_str(), flags);
  }, "virConnectGetDomainCapabilities failed");
}

Napi::Value GetVersions(const Napi::CallbackInfo& info) {
  auto ref = RefConn(info[0]);
  return Queue(info.Env(), Lane::Pool, [ref]() -> Builder {
    unsigned long hv = 0, lib = 0;
    if (virConnectGetVersion(ref->get(), &hv) < 0) Fail("virConnectGetVersion failed");
    if (virConnectGetLibVersion(ref->get(), &lib) < 0) Fail("virConnectGetLibVersion failed");
    const char* type = virConnectGetType(ref->get());
    std::string t = type ? type : "";
    return [hv, lib, t](Napi::Env env) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("hypervisor", Napi::Number::New(env, static_cast<double>(hv)));
      o.Set("libvirt", Napi::Number::New(env, static_cast<double>(lib)));
      o.Set("type", t);
      return o;
    };
  });
}

// Starts a domain from a state file written by virDomainSaveFlags (hibernation).
Napi::Value RestoreFlags(const Napi::CallbackInfo& info) {
  auto ref = RefConn(info[0]);
  std::string path = ArgString(info, 1, "path");
  OptString dxml = ArgOptString(info, 2);
  unsigned flags = ArgFlags(info, 3);
  // Reads all of the guest's RAM back: as long as the save, never on the shared pool.
  return Queue(info.Env(), Lane::Dedicated, [ref, path, dxml, flags]() -> Builder {
    if (virDomainRestoreFlags(ref->get(), path.c_str(), dxml.c_str(), flags) < 0) Fail("virDomainRestoreFlags failed");
    return [](Napi::Env env) { return env.Undefined(); };
  });
}

Napi::Value NodeGetInfo(const Napi::CallbackInfo& info) {
  auto ref = RefConn(info[0]);
  return Queue(info.Env(), Lane::Pool, [ref]() -> Builder {
    virNodeInfo ni;
    if (virNodeGetInfo(ref->get(), &ni) < 0) Fail("virNodeGetInfo failed");
    return [ni](Napi::Env env) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("model", std::string(ni.model));
      o.Set("memoryKiB", Napi::Number::New(env, static_cast<double>(ni.memory)));
      o.Set("cpus", ni.cpus);
      o.Set("mhz", ni.mhz);
      o.Set("nodes", ni.nodes);
      o.Set("sockets", ni.sockets);
      o.Set("cores", ni.cores);
      o.Set("threads", ni.threads);
      return o;
    };
  });
}

// Node CPU and memory stats share one shape: a counted array of {field, value}.
template <typename Param, typename Getter>
Builder NodeStats(Getter get, const char* what) {
  int n = 0;
  if (get(static_cast<Param*>(nullptr), &n) < 0) Fail(what);
  std::vector<Param> params(n > 0 ? n : 1);
  if (n > 0 && get(params.data(), &n) < 0) Fail(what);
  std::vector<std::pair<std::string, unsigned long long>> copy;
  for (int k = 0; k < n; k++) copy.emplace_back(params[k].field, params[k].value);
  return [copy](Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
    for (const auto& [f, v] : copy) o.Set(f, SafeInteger(env, v));
    return o;
  };
}

Napi::Value NodeGetCPUStats(const Napi::CallbackInfo& info) {
  auto ref = RefConn(info[0]);
  int cpu = info[1].As<Napi::Number>().Int32Value();
  unsigned flags = ArgFlags(info, 2);
  return Queue(info.Env(), Lane::Pool, [ref, cpu, flags]() -> Builder {
    return NodeStats<virNodeCPUStats>(
        [&](virNodeCPUStats* p, int* n) { return virNodeGetCPUStats(ref->get(), cpu, p, n, flags); },
        "virNodeGetCPUStats failed");
  });
}

Napi::Value NodeGetMemoryStats(const Napi::CallbackInfo& info) {
  auto ref = RefConn(info[0]);
  int cell = info[1].As<Napi::Number>().Int32Value();
  unsigned flags = ArgFlags(info, 2);
  return Queue(info.Env(), Lane::Pool, [ref, cell, flags]() -> Builder {
    return NodeStats<virNodeMemoryStats>(
        [&](virNodeMemoryStats* p, int* n) { return virNodeGetMemoryStats(ref->get(), cell, p, n, flags); },
        "virNodeGetMemoryStats failed");
  });
}

}  // namespace

void RegisterConnect(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, Open));
  exports.Set("close", Napi::Function::New(env, Close));
  exports.Set("setCloseCallback", Napi::Function::New(env, SetCloseCallback));
  exports.Set("setKeepAlive", Napi::Function::New(env, SetKeepAlive));
  exports.Set("isAlive", Napi::Function::New(env, IsAlive));
  exports.Set("getHostname", Napi::Function::New(env, GetHostname));
  exports.Set("getURI", Napi::Function::New(env, GetURI));
  exports.Set("getCapabilities", Napi::Function::New(env, GetCapabilities));
  exports.Set("getDomainCapabilities", Napi::Function::New(env, GetDomainCapabilities));
  exports.Set("getVersions", Napi::Function::New(env, GetVersions));
  exports.Set("connRestore", Napi::Function::New(env, RestoreFlags));
  exports.Set("nodeGetInfo", Napi::Function::New(env, NodeGetInfo));
  exports.Set("nodeGetCPUStats", Napi::Function::New(env, NodeGetCPUStats));
  exports.Set("nodeGetMemoryStats", Napi::Function::New(env, NodeGetMemoryStats));
}

}  // namespace hv
