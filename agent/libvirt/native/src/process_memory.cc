// What the agent's process gives back to the kernel after a burst: the V8
// heap (a memory-pressure GC, which also frees the malloc'd backing stores of
// dead Buffers) and glibc's malloc (malloc_trim, which returns the free pages
// inside its arenas, not only at their top). Both run on the JS thread, where
// the V8 isolate lives; a call costs one full GC and one walk of the arenas.
#include <malloc.h>
#include <v8.h>

#include "common.h"

namespace hv {

namespace {
// A full, memory-reducing GC now (kCritical runs it synchronously on the
// isolate's thread), so dead objects and their external memory are freed
// before malloc is trimmed.
Napi::Value CollectGarbageNow(const Napi::CallbackInfo& info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate == nullptr) return Napi::Boolean::New(info.Env(), false);
  isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kCritical);
  // Back to normal, or V8 would keep treating every allocation as pressure.
  isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kNone);
  return Napi::Boolean::New(info.Env(), true);
}

// True if malloc gave memory back; false if it had none to give (or not glibc).
Napi::Value TrimMalloc(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) == 1);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// glibc's own account of its memory, over all arenas (bytes); null elsewhere.
Napi::Value MallocStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 33)
  struct mallinfo2 mi = mallinfo2();
  Napi::Object o = Napi::Object::New(env);
  o.Set("arenaBytes", Napi::Number::New(env, static_cast<double>(mi.arena)));
  o.Set("inUseBytes", Napi::Number::New(env, static_cast<double>(mi.uordblks)));
  o.Set("freeBytes", Napi::Number::New(env, static_cast<double>(mi.fordblks)));
  o.Set("mmappedBytes", Napi::Number::New(env, static_cast<double>(mi.hblkhd)));
  o.Set("topReleasableBytes", Napi::Number::New(env, static_cast<double>(mi.keepcost)));
  return o;
#else
  return env.Null();
#endif
}

}  // namespace

void RegisterProcessMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("collectGarbageNow", Napi::Function::New(env, CollectGarbageNow));
  exports.Set("trimMalloc", Napi::Function::New(env, TrimMalloc));
  exports.Set("mallocStats", Napi::Function::New(env, MallocStats));
}

}  // namespace hv
