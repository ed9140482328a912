// sanlock (libsanlock) binding: lockspaces, resource leases, registrations.
//
// Same threading rules as the libvirt part (common.h): every call that talks
// to the sanlock daemon or to lease storage runs as a Work off the JS thread.
//  - Lane::Pool: only calls the daemon's main thread answers at once from
//    memory (version, register, restrict, get_hosts, get_lockspaces).
//  - Lane::Dedicated: everything else. Calls that can block for seconds or
//    minutes (add/rem lockspace, acquire, release, direct writes to storage,
//    reads of lease areas, unregister), and the quick ones the daemon queues
//    to its worker threads (inquire, inq_lockspace, killpath): those workers
//    may all be busy with lease I/O on slow storage for up to an io_timeout
//    or more, and such a wait must not hold one of the 4 libuv pool threads.
//
// Failures reject with the facade's error class (MakeLibvirtError) built from
// a CapturedError with domain = kSanlockDomain (-2), code = the sanlock return
// value (a negative errno, or a SANLK_* code from sanlock_rv.h, or -1 for a
// short reply / "resource not held"), str1 = the operation, str2 = its target.
//
// A registration is a socket connected to the daemon (sanlock_register). The
// daemon ties the leases acquired on it to this process; closing it releases
// them. libsanlock requires callers to serialise calls on one registered
// socket, so each registration has a mutex:
//  - acquire/release/unregister wait for it (they are on Dedicated threads);
//  - inquire/restrict/killpath only try it, and fail with -EBUSY when
//    another call on the registration is in progress (the daemon itself
//    answers -EBUSY to a second command on a busy registration), so a watcher
//    polling inquire cannot pile up threads behind an acquire that waits for
//    another host's lease to expire.
// Registrations are looked up by fd in a table owned by this file; a call on
// an fd that this addon did not register (or already closed) fails with
#include "sanlock_util.h"

namespace hv {

void RegisterSanlockLockspaces(Napi::Env env, Napi::Object exports);

namespace {
using namespace sanlock_util;

// ---------- registrations ----------

struct Registration {
  int fd;
  std::mutex m;       // serialises libsanlock calls on fd
  bool open = true;   // false once closed (under m)
};
using RegPtr = std::shared_ptr<Registration>;

std::mutex g_regsMutex;
std::map<int, RegPtr>* g_regs = new std::map<int, RegPtr>();  // leaked on purpose: no exit-time destructor race

RegPtr FindReg(int fd) {
  std::lock_guard<std::mutex> lock(g_regsMutex);
  auto it = g_regs->find(fd);
  return it == g_regs->end() ? nullptr : it->second;
}

// Runs fn(fd) with the registration's mutex held. wait=false: fail with
// -EBUSY instead of waiting for another call on the registration.
template <typename Fn>
auto WithReg(const RegPtr& reg, int fd, bool wait, const std::string& op, Fn fn) -> decltype(fn(0)) {
  if (!reg) SanlockFail(-EBADF, op, "fd " + std::to_string(fd) + " (not a sanlock registration of this process)");
  std::unique_lock<std::mutex> lock(reg->m, std::defer_lock);
  if (wait) {
    lock.lock();
  } else if (!lock.try_lock()) {
    SanlockFail(-EBUSY, op, "fd " + std::to_string(fd) + " (another call on this registration is in progress)");
  }
  if (!reg->open) SanlockFail(-EBADF, op, "fd " + std::to_string(fd) + " (registration closed)");
  return fn(reg->fd);
}

struct HeldResource {
  std::string lockspace, name, path;
  uint64_t offset = 0, lver = 0;
  uint32_t flags = 0;
};

// Parses sanlock_inquire's state string (space-separated resources; colons
// inside paths are escaped) with libsanlock's own parser.
std::vector<HeldResource> ParseState(char* state) {
  std::vector<HeldResource> out;
  if (state == nullptr || state[0] == '\0') return out;
  int count = 0;
  sanlk_resource** args = nullptr;
  int rv = sanlock_state_to_args(state, &count, &args);
  if (rv < 0) SanlockFail(rv, "inquire", "(parsing the daemon's state string)");
  for (int i = 0; i < count; i++) {
    sanlk_resource* r = args[i];
    HeldResource h;
    h.lockspace = NameOf(r->lockspace_name);
    h.name = NameOf(r->name);
    if (r->num_disks > 0) {
      h.path = std::string(r->disks[0].path, strnlen(r->disks[0].path, SANLK_PATH_LEN));
      h.offset = r->disks[0].offset;
    }
    h.lver = r->lver;
    h.flags = r->flags;
    out.push_back(std::move(h));
    free(r);
  }
  free(args);
  return out;
}

std::vector<HeldResource> InquireLocked(int fd, const std::string& op) {
  int count = 0;
  char* state = nullptr;
  int rv = sanlock_inquire(fd, -1, 0, &count, &state);
  if (rv < 0) {
    free(state);
    SanlockFail(rv, op, "fd " + std::to_string(fd));
  }
  std::vector<HeldResource> held;
  try {
    held = ParseState(state);
  } catch (...) {
    free(state);
    throw;
  }
  free(state);
  return held;
}

Napi::Value HeldToJs(Napi::Env env, const HeldResource& h) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("lockspace", h.lockspace);
  o.Set("resource", h.name);
  o.Set("path", h.path);
  o.Set("offset", SafeInteger(env, static_cast<unsigned long long>(h.offset)));
  o.Set("lver", SafeInteger(env, static_cast<unsigned long long>(h.lver)));
  o.Set("flags", Napi::Number::New(env, h.flags));
  return o;
}

// ---------- registrations and leases ----------

// sanlockRegister() -> fd. The socket is made close-on-exec so child
// processes (hooks, helpers) never keep the registration, and so its leases,
// alive after the agent exits.
Napi::Value Register(const Napi::CallbackInfo& info) {
  return Queue(info.Env(), Lane::Pool, []() -> Builder {
    int fd = sanlock_register();
    if (fd < 0) SanlockFail(fd, "register", "");
    int fdflags = fcntl(fd, F_GETFD);
    if (fdflags < 0 || fcntl(fd, F_SETFD, fdflags | FD_CLOEXEC) < 0) {
      int err = errno;
      close(fd);
      SanlockFail(-err, "register", "(setting FD_CLOEXEC)");
    }
    auto reg = std::make_shared<Registration>();
    reg->fd = fd;
    {
      std::lock_guard<std::mutex> lock(g_regsMutex);
      (*g_regs)[fd] = reg;
    }
    return Int(fd);
  });
}

// sanlockUnregister(fd): closes the registration; the daemon then releases
// every lease held on it (asynchronously). A call in progress on it is cut
// short (shutdown) and fails.
Napi::Value Unregister(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  RegPtr reg;
  {
    std::lock_guard<std::mutex> lock(g_regsMutex);
    auto it = g_regs->find(fd);
    if (it != g_regs->end()) {
      reg = it->second;
      g_regs->erase(it);  // no new call can find it; this is now the only closer
    }
  }
  return Queue(info.Env(), Lane::Dedicated, [reg, fd]() -> Builder {
    if (!reg) SanlockFail(-EBADF, "unregister", "fd " + std::to_string(fd) + " (not a sanlock registration)");
    shutdown(reg->fd, SHUT_RDWR);  // wakes a call blocked in recv on it
    std::lock_guard<std::mutex> lock(reg->m);
    if (reg->open) {
      close(reg->fd);
      reg->open = false;
    }
    return Undefined();
  });
}

// sanlockRestrict(fd, flags)
Napi::Value Restrict(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  uint32_t flags = ArgU32(info, 1, "flags");
  RegPtr reg = FindReg(fd);
  return Queue(info.Env(), Lane::Pool, [reg, fd, flags]() -> Builder {
    WithReg(reg, fd, false, "restrict", [&](int sock) {
      int rv = sanlock_restrict(sock, flags);
      if (rv < 0) SanlockFail(rv, "restrict", "fd " + std::to_string(fd));
      return 0;
    });
    return Undefined();
  });
}

// sanlockKillpath(fd, path, args, flags): the program sanlock runs (instead of
// SIGTERM) when a lockspace this registration uses fails.
Napi::Value Killpath(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  std::string path = ArgString(info, 1, "killpath");
  std::string args = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : std::string();
  uint32_t flags = ArgU32(info, 3, "flags");
  if (path.size() >= SANLK_HELPER_PATH_LEN || args.size() >= SANLK_HELPER_ARGS_LEN) {
    throw Napi::RangeError::New(info.Env(), "killpath and its args must each be shorter than " +
                                                std::to_string(SANLK_HELPER_PATH_LEN) + " bytes");
  }
  RegPtr reg = FindReg(fd);
  return Queue(info.Env(), Lane::Dedicated, [reg, fd, path, args, flags]() -> Builder {
    WithReg(reg, fd, false, "killpath", [&](int sock) {
      char p[SANLK_HELPER_PATH_LEN] = {0};
      char a[SANLK_HELPER_ARGS_LEN] = {0};
      std::memcpy(p, path.data(), path.size());
      std::memcpy(a, args.data(), args.size());
      int rv = sanlock_killpath(sock, flags, p, a);
      if (rv < 0) SanlockFail(rv, "killpath", "fd " + std::to_string(fd));
      return 0;
    });
    return Undefined();
  });
}

// sanlockAcquire(fd, lockspace, name, path, offset, acquireFlags, resFlags, lver|null)
//   -> { ...held resource, lver } as the daemon reports it right after the acquire.
// lver (with SANLK_RES_LVER added to resFlags) makes the acquire fail unless
// the lease's current version is exactly that.
Napi::Value Acquire(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  std::string lockspace = ArgName(info, 1, "lockspace name");
  std::string name = ArgName(info, 2, "resource name");
  std::string path = ArgPath(info, 3, "path");
  uint64_t offset = ArgUInt64(info, 4, "offset");
  uint32_t flags = ArgU32(info, 5, "flags");
  uint32_t resFlags = ArgU32(info, 6, "resource flags");
  bool hasLver = !(info[7].IsUndefined() || info[7].IsNull());
  uint64_t lver = hasLver ? ArgUInt64(info, 7, "lver") : 0;
  RegPtr reg = FindReg(fd);
  return Queue(info.Env(), Lane::Dedicated, [=]() -> Builder {
    std::string target = Target(lockspace, name, path, offset);
    HeldResource got = WithReg(reg, fd, true, "acquire", [&](int sock) {
      OneDiskResource res(lockspace, name, path, offset);
      sanlk_resource* r = res.get();
      r->flags = resFlags;
      if (hasLver) {
        r->flags |= SANLK_RES_LVER;
        r->lver = lver;
      }
      sanlk_resource* list[1] = {r};
      int rv = sanlock_acquire(sock, -1, flags, 1, list, nullptr);
      if (rv < 0) SanlockFail(rv, "acquire", target);
      // The version the daemon got: sanlock_acquire does not return it, the
      // registration's inquire does (token->r.lver is set on acquire). If
      // that fails, give the lease back rather than report a failed acquire
      // while holding it.
      try {
        for (HeldResource& h : InquireLocked(sock, "acquire (inquire after acquire)")) {
          if (h.lockspace == lockspace && h.name == name) return h;
        }
      } catch (const VirFailure&) {
        sanlock_release(sock, -1, 0, 1, list);
        throw;
      }
      sanlock_release(sock, -1, 0, 1, list);
      SanlockFail(-ENOENT, "acquire", target + " (acquired, but missing from the registration's inquire)");
    });
    return [got](Napi::Env env) { return HeldToJs(env, got); };
  });
}

// sanlockRelease(fd, lockspace|null, name|null, path|null, offset, flags)
// With SANLK_REL_ALL (or lockspace null) every lease of the registration is released.
Napi::Value Release(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  uint32_t flags = ArgU32(info, 5, "flags");
  bool all = info[1].IsNull() || info[1].IsUndefined();
  std::string lockspace, name, path;
  uint64_t offset = 0;
  if (!all) {
    lockspace = ArgName(info, 1, "lockspace name");
    name = ArgName(info, 2, "resource name");
    path = ArgPath(info, 3, "path");
    offset = ArgUInt64(info, 4, "offset");
  } else {
    flags |= SANLK_REL_ALL;
  }
  RegPtr reg = FindReg(fd);
  return Queue(info.Env(), Lane::Dedicated, [=]() -> Builder {
    std::string target = all ? "fd " + std::to_string(fd) + " (all)" : Target(lockspace, name, path, offset);
    WithReg(reg, fd, true, "release", [&](int sock) {
      int rv;
      if (all) {
        rv = sanlock_release(sock, -1, flags, 0, nullptr);
      } else {
        OneDiskResource res(lockspace, name, path, offset);
        sanlk_resource* list[1] = {res.get()};
        rv = sanlock_release(sock, -1, flags, 1, list);
      }
      if (rv < 0) SanlockFail(rv, "release", target);
      return 0;
    });
    return Undefined();
  });
}

// sanlockInquire(fd) -> [{ lockspace, resource, path, offset, lver, flags }]
Napi::Value Inquire(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  RegPtr reg = FindReg(fd);
  return Queue(info.Env(), Lane::Dedicated, [reg, fd]() -> Builder {
    auto held = std::make_shared<std::vector<HeldResource>>(
        WithReg(reg, fd, false, "inquire", [&](int sock) { return InquireLocked(sock, "inquire"); }));
    return [held](Napi::Env env) {
      Napi::Array a = Napi::Array::New(env, held->size());
      for (size_t i = 0; i < held->size(); i++) a.Set(static_cast<uint32_t>(i), HeldToJs(env, (*held)[i]));
      return a;
    };
  });
}

// sanlockStrerror(rc) -> sanlock's text for a SANLK_* code, or strerror.
Napi::Value Strerror(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "rc must be a number");
  return Napi::String::New(info.Env(), Meaning(info[0].As<Napi::Number>().Int32Value()));
}

}  // namespace

void RegisterSanlock(Napi::Env env, Napi::Object exports) {
  RegisterSanlockLockspaces(env, exports);
  exports.Set("sanlockStrerror", Napi::Function::New(env, Strerror));
  exports.Set("sanlockRegister", Napi::Function::New(env, Register));
  exports.Set("sanlockUnregister", Napi::Function::New(env, Unregister));
  exports.Set("sanlockRestrict", Napi::Function::New(env, Restrict));
  exports.Set("sanlockKillpath", Napi::Function::New(env, Killpath));
  exports.Set("sanlockAcquire", Napi::Function::New(env, Acquire));
  exports.Set("sanlockRelease", Napi::Function::New(env, Release));
  exports.Set("sanlockInquire", Napi::Function::New(env, Inquire));
}


}  // namespace hv
