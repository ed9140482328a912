// Connection state shared by connect.cc and events.cc.
#pragma once

#include <atomic>
#include <mutex>

#include "common.h"

namespace hv {

struct Subscription;

// The event subscriptions of one connection. Shared by the connection and
// each subscription, because libvirt frees a subscription (freecb) only when
// the connection object is finally disposed, which can be after close().
struct SubscriptionRegistry {
  std::mutex mutex;
  std::vector<Subscription*> subs;
};

struct ConnBox {
  std::shared_ptr<SubscriptionRegistry> subscriptions = std::make_shared<SubscriptionRegistry>();
  std::atomic<virConnectPtr> conn{nullptr};
  // Set once close() starts: later calls are refused instead of racing the close.
  std::atomic<bool> closing{false};
  // The "disconnected" signal: libvirt's close callback is relayed here.
  std::mutex closeCbMutex;
  bool closeCbRegistered = false;
  Napi::ThreadSafeFunction closeCb;
};

// Runs a function on the reaper thread (frees that may turn into RPCs).
void RunOffThread(std::function<void()> fn);

}  // namespace hv
