// Promise-returning calls: short ones on the libuv pool, long ones on their
// own threads so that a migration or a guest-agent shutdown cannot starve
// the 4-thread pool that fs, dns and crypto share.
#include <cmath>
#include <thread>

#include "common.h"

namespace hv {

namespace {

// The outcome of a Work, produced off the JS thread.
struct Outcome {
  bool ok = false;
  Builder build;
  CapturedError error;

  void Run(const Work& work) {
    try {
      build = work();
      ok = true;
    } catch (const VirFailure& f) {
      error = f.err;
    } catch (const std::exception& ex) {
      error.message = std::string("hostvisor addon: ") + ex.what();
    } catch (...) {
      error.message = "hostvisor addon: unknown failure";
    }
  }

  void Settle(Napi::Env env, Napi::Promise::Deferred& deferred) {
    if (!ok) {
      deferred.Reject(MakeLibvirtError(env, error));
      return;
    }
    try {
      deferred.Resolve(build ? build(env) : env.Undefined());
    } catch (const Napi::Error& e) {
      deferred.Reject(e.Value());
    }
  }
};

std::vector<Napi::Reference<Napi::Value>> Hold(std::vector<Napi::Value>& values) {
  std::vector<Napi::Reference<Napi::Value>> refs;
  refs.reserve(values.size());
  for (auto& v : values) refs.push_back(Napi::Persistent(v));
  return refs;
}

class PoolCall : public Napi::AsyncWorker {
 public:
  PoolCall(Napi::Env env, Work work, std::vector<Napi::Value> keepAlive)
      : Napi::AsyncWorker(env, "hostvisor.libvirt"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        held_(Hold(keepAlive)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    outcome_.Run(work_);
    work_ = nullptr;  // release captured state (ConnRef) on this thread
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    outcome_.Settle(Env(), deferred_);
  }
  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    outcome_.Settle(Env(), deferred_);
  }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  std::vector<Napi::Reference<Napi::Value>> held_;
  Outcome outcome_;
};

struct ThreadCall {
  Napi::Promise::Deferred deferred;
  Work work;
  std::vector<Napi::Reference<Napi::Value>> held;
  Outcome outcome;
  Napi::ThreadSafeFunction done;
};

}  // namespace

Napi::Promise Queue(Napi::Env env, Lane lane, Work work, std::vector<Napi::Value> keepAlive) {
  if (lane == Lane::Pool) {
    auto* call = new PoolCall(env, std::move(work), std::move(keepAlive));
    Napi::Promise p = call->Promise();
    call->Queue();
    return p;
  }
  auto* call = new ThreadCall{Napi::Promise::Deferred::New(env), std::move(work), Hold(keepAlive), {}, {}};
  // A ref'd thread-safe function keeps Node alive until the call completes.
  call->done = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                             "hostvisor.libvirt.long", 0, 1);
  Napi::Promise p = call->deferred.Promise();
  std::thread([call]() {
    call->outcome.Run(call->work);
    call->work = nullptr;
    // Copy the handle: the completion deletes `call`.
    Napi::ThreadSafeFunction done = call->done;
    done.BlockingCall([call](Napi::Env env, Napi::Function) {
      Napi::HandleScope scope(env);
      call->outcome.Settle(env, call->deferred);
      call->held.clear();
      delete call;
    });
    // If the environment is shutting down the call was not queued; nobody
    // awaits the result then, and `call` is leaked rather than touched.
    done.Release();
  }).detach();
  return p;
}

Builder Undefined() {
  return [](Napi::Env env) { return env.Undefined(); };
}
Builder String(std::string s) {
  return [s = std::move(s)](Napi::Env env) { return Napi::String::New(env, s); };
}
Builder Int(long long v) {
  return [v](Napi::Env env) { return SafeInteger(env, v); };
}

static constexpr double kMaxSafe = 9007199254740991.0;  // 2^53 - 1

Napi::Value SafeInteger(Napi::Env env, unsigned long long v) {
  if (static_cast<double>(v) <= kMaxSafe) return Napi::Number::New(env, static_cast<double>(v));
  return Napi::BigInt::New(env, static_cast<uint64_t>(v));
}
Napi::Value SafeInteger(Napi::Env env, long long v) {
  if (std::fabs(static_cast<double>(v)) <= kMaxSafe) return Napi::Number::New(env, static_cast<double>(v));
  return Napi::BigInt::New(env, static_cast<int64_t>(v));
}

}  // namespace hv
