// virTypedParameter copying (off the JS thread) and conversion (on it).
#pragma once

#include "common.h"

namespace hv {

struct TypedValue {
  std::string field;
  int type = 0;  // VIR_TYPED_PARAM_*
  long long i = 0;
  unsigned long long u = 0;
  double d = 0;
  std::string s;
};
using TypedList = std::vector<TypedValue>;

// Copies libvirt-owned parameters; safe to call on any thread.
TypedList CopyTypedParams(virTypedParameterPtr params, int n);
// {field: value}; 64-bit integers become numbers when safe, else BigInt.
Napi::Object TypedParamsToJs(Napi::Env env, const TypedList& list);
// From JS [[name, type, value], ...] (read on the JS thread).
TypedList TypedParamsFromJs(const Napi::Value& v);

// Owns a virTypedParameterPtr built from a TypedList on a worker thread.
class TypedParamsBuffer {
 public:
  explicit TypedParamsBuffer(const TypedList& list);
  ~TypedParamsBuffer();
  TypedParamsBuffer(const TypedParamsBuffer&) = delete;
  TypedParamsBuffer& operator=(const TypedParamsBuffer&) = delete;
  virTypedParameterPtr params() const { return params_; }
  int count() const { return n_; }

 private:
  virTypedParameterPtr params_ = nullptr;
  int n_ = 0;
  int max_ = 0;
};

}  // namespace hv
