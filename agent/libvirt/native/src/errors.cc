// libvirt error capture and conversion to the facade's LibvirtError class.
#include "common.h"

namespace hv {

static Napi::FunctionReference* g_errorClass = nullptr;

CapturedError CaptureLastError(const char* fallback) {
  CapturedError e;
  virErrorPtr err = virGetLastError();  // thread-local: must run on the failing thread
  if (err != nullptr) {
    e.code = err->code;
    e.domain = err->domain;
    e.level = err->level;
    e.message = err->message ? err->message : fallback;
    if (err->str1) e.str1 = err->str1;
    if (err->str2) e.str2 = err->str2;
    if (err->str3) e.str3 = err->str3;
    e.int1 = err->int1;
    e.int2 = err->int2;
    virResetLastError();
  } else {
    e.message = fallback;
  }
  return e;
}

void Fail(const char* what) { throw VirFailure{CaptureLastError(what)}; }

void SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass: expected a constructor");
  if (g_errorClass == nullptr) g_errorClass = new Napi::FunctionReference();
  *g_errorClass = Napi::Persistent(info[0].As<Napi::Function>());
}

Napi::Value MakeLibvirtError(Napi::Env env, const CapturedError& e) {
  Napi::Object detail = Napi::Object::New(env);
  detail.Set("code", e.code);
  detail.Set("domain", e.domain);
  detail.Set("level", e.level);
  if (!e.str1.empty()) detail.Set("str1", e.str1);
  if (!e.str2.empty()) detail.Set("str2", e.str2);
  if (!e.str3.empty()) detail.Set("str3", e.str3);
  detail.Set("int1", e.int1);
  detail.Set("int2", e.int2);
  if (g_errorClass != nullptr && !g_errorClass->IsEmpty()) {
    return g_errorClass->New({Napi::String::New(env, e.message), detail});
  }
  Napi::Error err = Napi::Error::New(env, e.message);
  err.Set("name", "LibvirtError");
  err.Set("code", Napi::Number::New(env, e.code));
  err.Set("domain", Napi::Number::New(env, e.domain));
  err.Set("level", Napi::Number::New(env, e.level));
  return err.Value();
}

}  // namespace hv
