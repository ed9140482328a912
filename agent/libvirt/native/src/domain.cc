// Domain lookup, definition and lifecycle, XML, info/state and metadata.
#include "domain_call.h"

namespace hv {

namespace {

// ---------- lookup and listing (connection-level) ----------

Napi::Value ListAll(const Napi::CallbackInfo& info) {
  auto ref = RefConn(info[0]);
  unsigned flags = ArgFlags(info, 1);
  return Queue(info.Env(), Lane::Pool, [ref, flags]() -> Builder {
    virDomainPtr* doms = nullptr;
    int n = virConnectListAllDomains(ref->get(), &doms, flags);
    if (n < 0) Fail("virConnectListAllDomains failed");
    std::vector<virDomainPtr> list(doms, doms + n);
    free(doms);
    return [list](Napi::Env env) {
      Napi::Array arr = Napi::Array::New(env, list.size());
      for (size_t k = 0; k < list.size(); k++) arr.Set(k, WrapDomain(env, list[k]));
      return arr;
    };
  });
}

template <typename F>
Napi::Value ConnDomainCall(const Napi::CallbackInfo& info, F fn, const char* what) {
  auto ref = RefConn(info[0]);
  return Queue(info.Env(), Lane::Pool, [ref, fn, what]() -> Builder {
    virDomainPtr d = fn(ref->get());
    if (d == nullptr) Fail(what);
    return DomainResult(d);
  });
}

Napi::Value LookupByName(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 1, "name");
  return ConnDomainCall(info, [name](virConnectPtr c) { return virDomainLookupByName(c, name.c_str()); },
                        "virDomainLookupByName failed");
}
Napi::Value LookupByUUID(const Napi::CallbackInfo& info) {
  std::string uuid = ArgString(info, 1, "uuid");
  return ConnDomainCall(info, [uuid](virConnectPtr c) { return virDomainLookupByUUIDString(c, uuid.c_str()); },
                        "virDomainLookupByUUIDString failed");
}
Napi::Value DefineXML(const Napi::CallbackInfo& info) {
  std::string xml = ArgString(info, 1, "xml");
  unsigned flags = ArgFlags(info, 2);
  return ConnDomainCall(info, [xml, flags](virConnectPtr c) { return virDomainDefineXMLFlags(c, xml.c_str(), flags); },
                        "virDomainDefineXMLFlags failed");
}
Napi::Value CreateXML(const Napi::CallbackInfo& info) {
  std::string xml = ArgString(info, 1, "xml");
  unsigned flags = ArgFlags(info, 2);
  return ConnDomainCall(info, [xml, flags](virConnectPtr c) { return virDomainCreateXML(c, xml.c_str(), flags); },
                        "virDomainCreateXML failed");
}

// ---------- identity: local accessors, no RPC, so synchronous ----------

Napi::Value Identity(const Napi::CallbackInfo& info) {
  virDomainPtr d = UnwrapDomain(info[0]);
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const char* name = virDomainGetName(d);
  char uuid[VIR_UUID_STRING_BUFLEN];
  if (virDomainGetUUIDString(d, uuid) < 0) uuid[0] = '\0';
  o.Set("name", name ? name : "");
  o.Set("uuid", std::string(uuid));
  unsigned int id = virDomainGetID(d);
  o.Set("id", id == static_cast<unsigned int>(-1) ? -1.0 : static_cast<double>(id));
  virResetLastError();
  return o;
}

// ---------- lifecycle ----------

#define FLAGS_CALL(NAME, LANE, EXPR, WHAT)                                                      \
  Napi::Value NAME(const Napi::CallbackInfo& info) {                                            \
    unsigned flags = ArgFlags(info, 1);                                                          \
    return DomainVoidCall(info, LANE, [flags](virDomainPtr d) { return EXPR; }, WHAT);           \
  }

FLAGS_CALL(Create, Lane::Pool, virDomainCreateWithFlags(d, flags), "virDomainCreateWithFlags failed")
FLAGS_CALL(Destroy, Lane::Pool, virDomainDestroyFlags(d, flags), "virDomainDestroyFlags failed")
// Shutdown and reboot may wait on the guest agent: own thread.
FLAGS_CALL(Shutdown, Lane::Dedicated, virDomainShutdownFlags(d, flags), "virDomainShutdownFlags failed")
FLAGS_CALL(Reboot, Lane::Dedicated, virDomainReboot(d, flags), "virDomainReboot failed")
FLAGS_CALL(Reset, Lane::Pool, virDomainReset(d, flags), "virDomainReset failed")
FLAGS_CALL(Undefine, Lane::Pool, virDomainUndefineFlags(d, flags), "virDomainUndefineFlags failed")
#undef FLAGS_CALL

Napi::Value Suspend(const Napi::CallbackInfo& info) {
  return DomainVoidCall(info, Lane::Pool, [](virDomainPtr d) { return virDomainSuspend(d); }, "virDomainSuspend failed");
}
Napi::Value Resume(const Napi::CallbackInfo& info) {
  return DomainVoidCall(info, Lane::Pool, [](virDomainPtr d) { return virDomainResume(d); }, "virDomainResume failed");
}

// ---------- description and state ----------

Napi::Value GetXMLDesc(const Napi::CallbackInfo& info) {
  unsigned flags = ArgFlags(info, 1);
  return DomainStringCall(info, Lane::Pool, [flags](virDomainPtr d) { return virDomainGetXMLDesc(d, flags); },
                          "virDomainGetXMLDesc failed");
}

Napi::Value GetInfo(const Napi::CallbackInfo& info) {
  return DomainCall(info, Lane::Pool, [](virDomainPtr d) -> Builder {
    virDomainInfo di;
    if (virDomainGetInfo(d, &di) < 0) Fail("virDomainGetInfo failed");
    return [di](Napi::Env env) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("state", static_cast<double>(di.state));
      o.Set("maxMemKiB", SafeInteger(env, static_cast<unsigned long long>(di.maxMem)));
      o.Set("memoryKiB", SafeInteger(env, static_cast<unsigned long long>(di.memory)));
      o.Set("nrVirtCpu", static_cast<double>(di.nrVirtCpu));
      o.Set("cpuTimeNs", SafeInteger(env, static_cast<unsigned long long>(di.cpuTime)));
      return o;
    };
  });
}

Napi::Value GetState(const Napi::CallbackInfo& info) {
  unsigned flags = ArgFlags(info, 1);
  return DomainCall(info, Lane::Pool, [flags](virDomainPtr d) -> Builder {
    int state = 0, reason = 0;
    if (virDomainGetState(d, &state, &reason, flags) < 0) Fail("virDomainGetState failed");
    return [state, reason](Napi::Env env) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("state", state);
      o.Set("reason", reason);
      return o;
    };
  });
}

Napi::Value GetMetadata(const Napi::CallbackInfo& info) {
  int type = info[1].As<Napi::Number>().Int32Value();
  OptString uri = ArgOptString(info, 2);
  unsigned flags = ArgFlags(info, 3);
  return DomainStringCall(info, Lane::Pool, [type, uri, flags](virDomainPtr d) {
    return virDomainGetMetadata(d, type, uri.c_str(), flags);
  }, "virDomainGetMetadata failed");
}

Napi::Value SetMetadata(const Napi::CallbackInfo& info) {
  int type = info[1].As<Napi::Number>().Int32Value();
  OptString metadata = ArgOptString(info, 2), key = ArgOptString(info, 3), uri = ArgOptString(info, 4);
  unsigned flags = ArgFlags(info, 5);
  return DomainVoidCall(info, Lane::Pool, [=](virDomainPtr d) {
    return virDomainSetMetadata(d, type, metadata.c_str(), key.c_str(), uri.c_str(), flags);
  }, "virDomainSetMetadata failed");
}

}  // namespace

void RegisterDomain(Napi::Env env, Napi::Object exports) {
  exports.Set("listAllDomains", Napi::Function::New(env, ListAll));
  exports.Set("lookupByName", Napi::Function::New(env, LookupByName));
  exports.Set("lookupByUUID", Napi::Function::New(env, LookupByUUID));
  exports.Set("defineXML", Napi::Function::New(env, DefineXML));
  exports.Set("createXML", Napi::Function::New(env, CreateXML));
  exports.Set("domainIdentity", Napi::Function::New(env, Identity));
  exports.Set("domainCreate", Napi::Function::New(env, Create));
  exports.Set("domainDestroy", Napi::Function::New(env, Destroy));
  exports.Set("domainShutdown", Napi::Function::New(env, Shutdown));
  exports.Set("domainReboot", Napi::Function::New(env, Reboot));
  exports.Set("domainReset", Napi::Function::New(env, Reset));
  exports.Set("domainUndefine", Napi::Function::New(env, Undefine));
  exports.Set("domainSuspend", Napi::Function::New(env, Suspend));
  exports.Set("domainResume", Napi::Function::New(env, Resume));
  exports.Set("domainGetXMLDesc", Napi::Function::New(env, GetXMLDesc));
  exports.Set("domainGetInfo", Napi::Function::New(env, GetInfo));
  exports.Set("domainGetState", Napi::Function::New(env, GetState));
  exports.Set("domainGetMetadata", Napi::Function::New(env, GetMetadata));
  exports.Set("domainSetMetadata", Napi::Function::New(env, SetMetadata));
}

}  // namespace hv
