// Domain event subscriptions. Callbacks run on libvirt's event thread: they
// copy what libvirt lends them and queue it to JS with a non-blocking call,
// so that thread (which also runs keepalive) never waits for JS.
#include <algorithm>

#include "handles.h"
#include "typed_params.h"

namespace hv {

namespace {

struct EventField {
  std::string key;
  enum Kind { Int, UInt, Str } kind;
  long long i = 0;
  unsigned long long u = 0;
  std::string s;
};

struct EventData {
  int eventId = 0;
  std::string name, uuid;
  double id = -1;
  std::vector<EventField> fields;
  bool hasParams = false;
  TypedList params;

  void Int(const char* k, long long v) { fields.push_back({k, EventField::Int, v, 0, {}}); }
  void UInt(const char* k, unsigned long long v) { fields.push_back({k, EventField::UInt, 0, v, {}}); }
  void Str(const char* k, const char* v) { fields.push_back({k, EventField::Str, 0, 0, v ? v : ""}); }
};

}  // namespace

struct Subscription {
  int eventId;
  Napi::ThreadSafeFunction tsfn;
  std::shared_ptr<SubscriptionRegistry> registry;
};

namespace {

void CallJs(Napi::Env env, Napi::Function fn, EventData* ev) {
  std::unique_ptr<EventData> owned(ev);
  if (env == nullptr || fn.IsEmpty()) return;  // environment is going away
  try {
    Napi::Object o = Napi::Object::New(env);
    o.Set("eventId", ev->eventId);
    Napi::Object dom = Napi::Object::New(env);
    dom.Set("name", ev->name);
    dom.Set("uuid", ev->uuid);
    dom.Set("id", ev->id);
    o.Set("domain", dom);
    for (const auto& f : ev->fields) {
      switch (f.kind) {
        case EventField::Int: o.Set(f.key, SafeInteger(env, f.i)); break;
        case EventField::UInt: o.Set(f.key, SafeInteger(env, f.u)); break;
        case EventField::Str: o.Set(f.key, f.s); break;
      }
    }
    if (ev->hasParams) o.Set("params", TypedParamsToJs(env, ev->params));
    fn.Call({o});
  } catch (const Napi::Error& e) {
    // A listener that throws must never abort the process.
    fprintf(stderr, "hostvisor: domain event listener threw: %s\n", e.Message().c_str());
  } catch (...) {
    fprintf(stderr, "hostvisor: domain event listener failed\n");
  }
}

EventData* Begin(virDomainPtr dom, void* opaque) {
  auto* ev = new EventData();
  ev->eventId = static_cast<Subscription*>(opaque)->eventId;
  const char* name = virDomainGetName(dom);
  ev->name = name ? name : "";
  char uuid[VIR_UUID_STRING_BUFLEN];
  if (virDomainGetUUIDString(dom, uuid) == 0) ev->uuid = uuid;
  unsigned int id = virDomainGetID(dom);
  ev->id = id == static_cast<unsigned int>(-1) ? -1.0 : static_cast<double>(id);
  return ev;
}

void Deliver(void* opaque, EventData* ev) {
  napi_status st = static_cast<Subscription*>(opaque)->tsfn.NonBlockingCall(ev, CallJs);
  if (st != napi_ok) delete ev;  // queue closing: drop rather than block
}

void OnLifecycle(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque) {
  EventData* ev = Begin(dom, opaque);
  ev->Int("event", event);
  ev->Int("detail", detail);
  Deliver(opaque, ev);
}
void OnGeneric(virConnectPtr, virDomainPtr dom, void* opaque) { Deliver(opaque, Begin(dom, opaque)); }
void OnBlockThreshold(virConnectPtr, virDomainPtr dom, const char* dev, const char* path, unsigned long long threshold,
                      unsigned long long excess, void* opaque) {
  EventData* ev = Begin(dom, opaque);
  ev->Str("dev", dev);
  ev->Str("path", path);
  ev->UInt("threshold", threshold);
  ev->UInt("excess", excess);
  Deliver(opaque, ev);
}
void OnIOErrorReason(virConnectPtr, virDomainPtr dom, const char* srcPath, const char* devAlias, int action,
                     const char* reason, void* opaque) {
  EventData* ev = Begin(dom, opaque);
  ev->Str("srcPath", srcPath);
  ev->Str("devAlias", devAlias);
  ev->Int("action", action);
  ev->Str("reason", reason);
  Deliver(opaque, ev);
}
void OnJobCompleted(virConnectPtr, virDomainPtr dom, virTypedParameterPtr params, int nparams, void* opaque) {
  EventData* ev = Begin(dom, opaque);
  ev->hasParams = true;
  ev->params = CopyTypedParams(params, nparams);
  Deliver(opaque, ev);
}
void OnDeviceAlias(virConnectPtr, virDomainPtr dom, const char* devAlias, void* opaque) {
  EventData* ev = Begin(dom, opaque);
  ev->Str("devAlias", devAlias);
  Deliver(opaque, ev);
}
void OnAgentLifecycle(virConnectPtr, virDomainPtr dom, int state, int reason, void* opaque) {
  EventData* ev = Begin(dom, opaque);
  ev->Int("state", state);
  ev->Int("reason", reason);
  Deliver(opaque, ev);
}
void OnMigrationIteration(virConnectPtr, virDomainPtr dom, int iteration, void* opaque) {
  EventData* ev = Begin(dom, opaque);
  ev->Int("iteration", iteration);
  Deliver(opaque, ev);
}
void OnBlockJob(virConnectPtr, virDomainPtr dom, const char* disk, int type, int status, void* opaque) {
  EventData* ev = Begin(dom, opaque);
  ev->Str("disk", disk);
  ev->Int("type", type);
  ev->Int("status", status);
  Deliver(opaque, ev);
}
void OnMetadataChange(virConnectPtr, virDomainPtr dom, int type, const char* nsuri, void* opaque) {
  EventData* ev = Begin(dom, opaque);
  ev->Int("type", type);
  ev->Str("nsuri", nsuri);
  Deliver(opaque, ev);
}

virConnectDomainEventGenericCallback CallbackFor(int eventId) {
  switch (eventId) {
    case VIR_DOMAIN_EVENT_ID_LIFECYCLE: return VIR_DOMAIN_EVENT_CALLBACK(OnLifecycle);
    case VIR_DOMAIN_EVENT_ID_REBOOT: return VIR_DOMAIN_EVENT_CALLBACK(OnGeneric);
    case VIR_DOMAIN_EVENT_ID_BLOCK_THRESHOLD: return VIR_DOMAIN_EVENT_CALLBACK(OnBlockThreshold);
    case VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON: return VIR_DOMAIN_EVENT_CALLBACK(OnIOErrorReason);
    case VIR_DOMAIN_EVENT_ID_JOB_COMPLETED: return VIR_DOMAIN_EVENT_CALLBACK(OnJobCompleted);
    case VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED: return VIR_DOMAIN_EVENT_CALLBACK(OnDeviceAlias);
    case VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED: return VIR_DOMAIN_EVENT_CALLBACK(OnDeviceAlias);
    case VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE: return VIR_DOMAIN_EVENT_CALLBACK(OnAgentLifecycle);
    case VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION: return VIR_DOMAIN_EVENT_CALLBACK(OnMigrationIteration);
    case VIR_DOMAIN_EVENT_ID_METADATA_CHANGE: return VIR_DOMAIN_EVENT_CALLBACK(OnMetadataChange);
    case VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2: return VIR_DOMAIN_EVENT_CALLBACK(OnBlockJob);
    default: return nullptr;
  }
}

void FreeSubscription(void* opaque) {
  // Called by libvirt once it will never call this subscription again
  // (deregistered, or its connection closed).
  auto* sub = static_cast<Subscription*>(opaque);
  {
    std::lock_guard<std::mutex> lock(sub->registry->mutex);
    auto& v = sub->registry->subs;
    v.erase(std::remove(v.begin(), v.end(), sub), v.end());
  }
  sub->tsfn.Release();
  delete sub;
}

Napi::Value Register(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ref = RefConn(info[0]);
  virDomainPtr dom = (info[1].IsNull() || info[1].IsUndefined()) ? nullptr : UnwrapDomain(info[1]);
  int eventId = info[2].As<Napi::Number>().Int32Value();
  virConnectDomainEventGenericCallback cb = CallbackFor(eventId);
  if (cb == nullptr) throw Napi::RangeError::New(env, "unsupported domain event id " + std::to_string(eventId));
  if (!info[3].IsFunction()) throw Napi::TypeError::New(env, "listener must be a function");
  // Ref'd: an awaited subscription keeps Node alive until it is removed.
  ConnBox* box = UnwrapConn(info[0]);
  auto* sub = new Subscription{eventId, Napi::ThreadSafeFunction::New(env, info[3].As<Napi::Function>(),
                                                                      "hostvisor.libvirt.event", 0, 1),
                               box->subscriptions};
  std::vector<Napi::Value> keep{info[0]};
  if (dom != nullptr) keep.push_back(info[1]);
  return Queue(env, Lane::Pool, [ref, dom, eventId, cb, sub]() -> Builder {
    {
      // Listed before registering: libvirt may call FreeSubscription as soon as it is registered.
      std::lock_guard<std::mutex> lock(sub->registry->mutex);
      sub->registry->subs.push_back(sub);
    }
    int id = virConnectDomainEventRegisterAny(ref->get(), dom, eventId, cb, sub, FreeSubscription);
    if (id < 0) {
      {
        std::lock_guard<std::mutex> lock(sub->registry->mutex);
        auto& v = sub->registry->subs;
        v.erase(std::remove(v.begin(), v.end(), sub), v.end());
      }
      CapturedError e = CaptureLastError("virConnectDomainEventRegisterAny failed");
      sub->tsfn.Release();
      delete sub;
      throw VirFailure{e};
    }
    return Int(id);
  }, keep);
}

Napi::Value Deregister(const Napi::CallbackInfo& info) {
  auto ref = RefConn(info[0]);
  int callbackId = info[1].As<Napi::Number>().Int32Value();
  return Queue(info.Env(), Lane::Pool, [ref, callbackId]() -> Builder {
    if (virConnectDomainEventDeregisterAny(ref->get(), callbackId) < 0) Fail("virConnectDomainEventDeregisterAny failed");
    return Undefined();
  });
}

}  // namespace

// After close() nobody can deregister any more, but libvirt keeps the
// subscriptions until the last domain handle of the connection is freed.
// They must not keep Node alive in the meantime.
void UnrefSubscriptions(Napi::Env env, ConnBox* box) {
  std::lock_guard<std::mutex> lock(box->subscriptions->mutex);
  for (Subscription* sub : box->subscriptions->subs) sub->tsfn.Unref(env);
}

void RegisterEvents(Napi::Env env, Napi::Object exports) {
  exports.Set("domainEventRegister", Napi::Function::New(env, Register));
  exports.Set("domainEventDeregister", Napi::Function::New(env, Deregister));
}

}  // namespace hv
