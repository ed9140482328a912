// Promise-returning calls: short ones on the libuv pool, long ones on their
// own threads so that a migration or a guest-agent shutdown cannot starve
// the 4-thread pool that fs, dns and crypto share.
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
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

// Short calls run on the addon's own pool of threads, not on libuv's: the
// libuv pool has 4 threads shared with fs, dns and crypto, which would cap
// libvirt concurrency at 4 and let a slow libvirtd stall the rest of Node.
// Completions come back to JS through one thread-safe function, ref'd only
// while calls are pending so an idle addon never keeps Node alive.
struct PoolJob {
  Napi::Promise::Deferred deferred;
  Work work;
  std::vector<Napi::Reference<Napi::Value>> held;
  Outcome outcome;
};

class CallPool {
 public:
  static CallPool& Get() {
    static CallPool* pool = new CallPool();  // never destroyed: threads may outlive exit()
    return *pool;
  }

  void Init(Napi::Env env) {
    if (initialized_) {
      // The completion function belongs to the first environment (the main thread).
      if (static_cast<napi_env>(env) != env_) throw Napi::Error::New(env, "the libvirt addon serves only the thread that loaded it first");
      return;
    }
    initialized_ = true;
    env_ = env;
    done_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                          "hostvisor.libvirt.pool", 0, 1);
    done_.Unref(env);
    size_t n = 16;
    if (const char* v = getenv("HOSTVISOR_LIBVIRT_THREADS")) {
      long x = strtol(v, nullptr, 10);
      if (x >= 1 && x <= 256) n = static_cast<size_t>(x);
    }
    for (size_t k = 0; k < n; k++) std::thread([this]() { Loop(); }).detach();
  }

  void Submit(Napi::Env env, PoolJob* job) {
    if (pending_++ == 0) done_.Ref(env);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(job);
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    for (;;) {
      PoolJob* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [this] { return !queue_.empty(); });
        job = queue_.front();
        queue_.pop_front();
      }
      job->outcome.Run(job->work);
      job->work = nullptr;  // release captured state (ConnRef) on this thread
      napi_status st = done_.NonBlockingCall(job, [](Napi::Env env, Napi::Function, PoolJob* j) {
        if (env != nullptr) {
          Napi::HandleScope scope(env);
          j->outcome.Settle(env, j->deferred);
          j->held.clear();
        }
        delete j;
        CallPool& p = CallPool::Get();
        if (--p.pending_ == 0 && env != nullptr) p.done_.Unref(env);
      });
      if (st != napi_ok) continue;  // environment shutting down: nobody awaits it (job leaked on purpose)
    }
  }

  bool initialized_ = false;
  napi_env env_ = nullptr;
  Napi::ThreadSafeFunction done_;
  std::atomic<int> pending_{0};
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<PoolJob*> queue_;
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
    CallPool& pool = CallPool::Get();
    pool.Init(env);
    auto* job = new PoolJob{Napi::Promise::Deferred::New(env), std::move(work), Hold(keepAlive), {}};
    Napi::Promise p = job->deferred.Promise();
    pool.Submit(env, job);
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
