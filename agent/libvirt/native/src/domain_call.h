// Helpers for calls on one domain handle. The handle is kept alive (held
// strongly) for the duration of the call.
#pragma once

#include "common.h"

namespace hv {

// fn(dom) returns <0 on failure; resolves to undefined.
template <typename F>
Napi::Value DomainVoidCall(const Napi::CallbackInfo& info, Lane lane, F fn, const char* what) {
  virDomainPtr d = UnwrapDomain(info[0]);
  return Queue(info.Env(), lane, [d, fn, what]() -> Builder {
    if (fn(d) < 0) Fail(what);
    return Undefined();
  }, {info[0]});
}

// fn(dom) returns a malloc'd string owned by the caller, or NULL on failure.
template <typename F>
Napi::Value DomainStringCall(const Napi::CallbackInfo& info, Lane lane, F fn, const char* what) {
  virDomainPtr d = UnwrapDomain(info[0]);
  return Queue(info.Env(), lane, [d, fn, what]() -> Builder {
    char* s = fn(d);
    if (s == nullptr) Fail(what);
    std::string copy(s);
    free(s);
    return String(std::move(copy));
  }, {info[0]});
}

// fn(dom) does its own work and returns a Builder.
template <typename F>
Napi::Value DomainCall(const Napi::CallbackInfo& info, Lane lane, F fn) {
  virDomainPtr d = UnwrapDomain(info[0]);
  return Queue(info.Env(), lane, [d, fn]() -> Builder { return fn(d); }, {info[0]});
}

}  // namespace hv
