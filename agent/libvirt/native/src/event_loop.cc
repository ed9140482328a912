// One dedicated thread runs libvirt's default event loop (keepalive, the
// connection's socket I/O and every event callback). It is not a libuv
// thread, so it never takes a pool slot, and callbacks relay to JS without
// waiting for the JS thread.
#include <atomic>
#include <chrono>
#include <thread>

#include "common.h"

namespace hv {

namespace {
// Heap-allocated: a joinable static std::thread would call std::terminate()
// from exit() on paths where the env cleanup hook does not run.
std::thread* g_loop = nullptr;
std::atomic<bool> g_stop{false};
bool g_started = false;

void Wake(int timer, void*) { virEventRemoveTimeout(timer); }

void StopLoop(void*) {
  if (!g_started) return;
  g_stop = true;
  // A 0 ms timeout makes the blocked poll() return so the loop sees g_stop.
  virEventAddTimeout(0, Wake, nullptr, nullptr);
  if (g_loop != nullptr && g_loop->joinable()) g_loop->join();
  g_started = false;
}
}  // namespace

void InitEventLoop(Napi::Env env) {
  if (g_started) return;
  // Must precede the first virConnectOpen: connections bind to the
  // event implementation registered at open time.
  if (virEventRegisterDefaultImpl() < 0) {
    CapturedError e = CaptureLastError("virEventRegisterDefaultImpl failed");
    throw Napi::Error::New(env, e.message);
  }
  g_stop = false;
  g_loop = new std::thread([]() {
    while (!g_stop) {
      if (virEventRunDefaultImpl() < 0) {
        virResetLastError();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // never spin
      }
    }
  });
  g_started = true;
  napi_add_env_cleanup_hook(env, StopLoop, nullptr);
}

}  // namespace hv
