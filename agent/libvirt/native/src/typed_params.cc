#include "typed_params.h"

namespace hv {

TypedList CopyTypedParams(virTypedParameterPtr params, int n) {
  TypedList out;
  out.reserve(n > 0 ? n : 0);
  for (int k = 0; k < n; k++) {
    const virTypedParameter& p = params[k];
    TypedValue v;
    v.field = p.field;
    v.type = p.type;
    switch (p.type) {
      case VIR_TYPED_PARAM_INT: v.i = p.value.i; break;
      case VIR_TYPED_PARAM_UINT: v.u = p.value.ui; break;
      case VIR_TYPED_PARAM_LLONG: v.i = p.value.l; break;
      case VIR_TYPED_PARAM_ULLONG: v.u = p.value.ul; break;
      case VIR_TYPED_PARAM_DOUBLE: v.d = p.value.d; break;
      case VIR_TYPED_PARAM_BOOLEAN: v.i = p.value.b ? 1 : 0; break;
      case VIR_TYPED_PARAM_STRING: v.s = p.value.s ? p.value.s : ""; break;
      default: continue;  // a type newer than this addon: skip rather than guess
    }
    out.push_back(std::move(v));
  }
  return out;
}

Napi::Object TypedParamsToJs(Napi::Env env, const TypedList& list) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& v : list) {
    switch (v.type) {
      case VIR_TYPED_PARAM_INT: o.Set(v.field, Napi::Number::New(env, static_cast<double>(v.i))); break;
      case VIR_TYPED_PARAM_UINT: o.Set(v.field, Napi::Number::New(env, static_cast<double>(v.u))); break;
      case VIR_TYPED_PARAM_LLONG: o.Set(v.field, SafeInteger(env, v.i)); break;
      case VIR_TYPED_PARAM_ULLONG: o.Set(v.field, SafeInteger(env, v.u)); break;
      case VIR_TYPED_PARAM_DOUBLE: o.Set(v.field, Napi::Number::New(env, v.d)); break;
      case VIR_TYPED_PARAM_BOOLEAN: o.Set(v.field, Napi::Boolean::New(env, v.i != 0)); break;
      case VIR_TYPED_PARAM_STRING: o.Set(v.field, Napi::String::New(env, v.s)); break;
    }
  }
  return o;
}

TypedList TypedParamsFromJs(const Napi::Value& value) {
  Napi::Env env = value.Env();
  TypedList out;
  if (value.IsUndefined() || value.IsNull()) return out;
  if (!value.IsArray()) throw Napi::TypeError::New(env, "typed params must be an array of [name, type, value]");
  Napi::Array arr = value.As<Napi::Array>();
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value item = arr.Get(k);
    if (!item.IsArray() || item.As<Napi::Array>().Length() != 3)
      throw Napi::TypeError::New(env, "typed param must be [name, type, value]");
    Napi::Array t = item.As<Napi::Array>();
    TypedValue v;
    v.field = t.Get(0u).As<Napi::String>().Utf8Value();
    v.type = t.Get(1u).As<Napi::Number>().Int32Value();
    Napi::Value val = t.Get(2u);
    auto asU64 = [&]() -> unsigned long long {
      bool lossless;
      if (val.IsBigInt()) return val.As<Napi::BigInt>().Uint64Value(&lossless);
      return static_cast<unsigned long long>(val.As<Napi::Number>().DoubleValue());
    };
    auto asI64 = [&]() -> long long {
      bool lossless;
      if (val.IsBigInt()) return val.As<Napi::BigInt>().Int64Value(&lossless);
      return val.As<Napi::Number>().Int64Value();
    };
    switch (v.type) {
      case VIR_TYPED_PARAM_INT:
      case VIR_TYPED_PARAM_LLONG: v.i = asI64(); break;
      case VIR_TYPED_PARAM_UINT:
      case VIR_TYPED_PARAM_ULLONG: v.u = asU64(); break;
      case VIR_TYPED_PARAM_DOUBLE: v.d = val.As<Napi::Number>().DoubleValue(); break;
      case VIR_TYPED_PARAM_BOOLEAN: v.i = val.ToBoolean().Value() ? 1 : 0; break;
      case VIR_TYPED_PARAM_STRING: v.s = val.ToString().Utf8Value(); break;
      default: throw Napi::TypeError::New(env, "unknown typed param type for " + v.field);
    }
    out.push_back(std::move(v));
  }
  return out;
}

TypedParamsBuffer::TypedParamsBuffer(const TypedList& list) {
  for (const auto& v : list) {
    int rc = 0;
    const char* f = v.field.c_str();
    switch (v.type) {
      case VIR_TYPED_PARAM_INT: rc = virTypedParamsAddInt(&params_, &n_, &max_, f, static_cast<int>(v.i)); break;
      case VIR_TYPED_PARAM_UINT: rc = virTypedParamsAddUInt(&params_, &n_, &max_, f, static_cast<unsigned>(v.u)); break;
      case VIR_TYPED_PARAM_LLONG: rc = virTypedParamsAddLLong(&params_, &n_, &max_, f, v.i); break;
      case VIR_TYPED_PARAM_ULLONG: rc = virTypedParamsAddULLong(&params_, &n_, &max_, f, v.u); break;
      case VIR_TYPED_PARAM_DOUBLE: rc = virTypedParamsAddDouble(&params_, &n_, &max_, f, v.d); break;
      case VIR_TYPED_PARAM_BOOLEAN: rc = virTypedParamsAddBoolean(&params_, &n_, &max_, f, v.i != 0); break;
      case VIR_TYPED_PARAM_STRING: rc = virTypedParamsAddString(&params_, &n_, &max_, f, v.s.c_str()); break;
    }
    if (rc < 0) {
      CapturedError e = CaptureLastError("virTypedParamsAdd failed");
      virTypedParamsFree(params_, n_);
      params_ = nullptr;
      throw VirFailure{e};
    }
  }
}

TypedParamsBuffer::~TypedParamsBuffer() {
  if (params_ != nullptr) virTypedParamsFree(params_, n_);
}

}  // namespace hv
