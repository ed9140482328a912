// What the agent's process gives back to the kernel after a burst: the V8
// heap (a memory-pressure GC, which also frees the malloc'd backing stores of
// dead Buffers) and glibc's malloc (malloc_trim, which returns the free pages
// inside its arenas, not only at their top). Both run on the JS thread, where
// the V8 isolate lives.
#include <malloc.h>
#include <v8.h>

#include "common.h"

namespace hv {

namespace {
// Tells V8 memory is short. Critical: a full, memory-reducing GC now, on
// this thread (tens to hundreds of ms on a large heap). Moderate: V8 starts
// incremental marking with the same goal, done in small steps, so the event
// loop is never held long; the GC completes within the next seconds.
Napi::Value MemoryPressure(const Napi::CallbackInfo& info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate == nullptr) return Napi::Boolean::New(info.Env(), false);
  bool critical = info.Length() > 0 && info[0].ToBoolean().Value();
  // V8 acts on the notification at once (this is the isolate's thread) and resets the level itself.
  isolate->MemoryPressureNotification(critical ? v8::MemoryPressureLevel::kCritical : v8::MemoryPressureLevel::kModerate);
  return Napi::Boolean::New(info.Env(), true);
}

// Resolves true if malloc gave memory back; false if it had none to give
// (or not glibc). Runs on the thread pool: trimming arenas fragmented by a
// burst took up to 230 ms, which the event loop must not wait for. (While
// it trims an arena it holds that arena's lock, as any malloc call does.)
Napi::Value TrimMalloc(const Napi::CallbackInfo& info) {
  return Queue(info.Env(), Lane::Pool, []() -> Builder {
#if defined(__GLIBC__)
    bool released = malloc_trim(0) == 1;
#else
    bool released = false;
#endif
    return [released](Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, released); };
  });
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
  exports.Set("memoryPressure", Napi::Function::New(env, MemoryPressure));
  exports.Set("trimMalloc", Napi::Function::New(env, TrimMalloc));
  exports.Set("mallocStats", Napi::Function::New(env, MallocStats));
}

}  // namespace hv
