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
// -EBADF and never touches the descriptor.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

extern "C" {
#include <sanlock.h>
#include <sanlock_admin.h>
#include <sanlock_direct.h>
#include <sanlock_resource.h>
#include <sanlock_rv.h>
}

#include "common.h"

namespace hv {

namespace {

constexpr int kSanlockDomain = -2;

std::string Meaning(int rv) {
  if (rv == -1) {
    return "request failed (the resource is not held by this registration, or the reply from the sanlock daemon "
           "was cut short)";
  }
  if (rv <= -200 && rv > -300) {
    const char* s = sanlock_strerror(rv);
    if (s != nullptr && std::strcmp(s, "Unknown error") != 0) return s;
    return "sanlock error " + std::to_string(rv);
  }
  if (rv < 0) {
    char buf[256];
    // GNU strerror_r returns the message (not necessarily in buf).
    const char* s = strerror_r(-rv, buf, sizeof buf);
    return s != nullptr ? s : ("errno " + std::to_string(-rv));
  }
  return "unexpected result " + std::to_string(rv);
}

[[noreturn]] void SanlockFail(int rv, const std::string& op, const std::string& target) {
  CapturedError e;
  e.code = rv;
  e.domain = kSanlockDomain;
  e.level = 2;
  e.message = "sanlock " + op + (target.empty() ? "" : " " + target) + ": " + Meaning(rv);
  e.str1 = op;
  e.str2 = target;
  throw VirFailure{e};
}

// ---------- argument helpers (JS thread) ----------

std::string ArgName(const Napi::CallbackInfo& info, size_t i, const char* what) {
  std::string s = ArgString(info, i, what);
  if (s.empty() || s.size() > SANLK_NAME_LEN) {
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be 1.." + std::to_string(SANLK_NAME_LEN) +
                                                " bytes");
  }
  return s;
}

std::string ArgPath(const Napi::CallbackInfo& info, size_t i, const char* what) {
  std::string s = ArgString(info, i, what);
  if (s.empty() || s.size() >= SANLK_PATH_LEN) {
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be 1.." + std::to_string(SANLK_PATH_LEN - 1) +
                                                " bytes");
  }
  return s;
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info[i].IsUndefined() || info[i].IsNull()) return 0;
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 4294967295.0) throw Napi::RangeError::New(info.Env(), std::string(what) + " is out of range");
  return static_cast<uint32_t>(d);
}

int ArgFd(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "fd must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

// ---------- C structs ----------

void CopyName(char (&dst)[SANLK_NAME_LEN], const std::string& src) {
  std::memset(dst, 0, SANLK_NAME_LEN);
  std::memcpy(dst, src.data(), std::min<size_t>(src.size(), SANLK_NAME_LEN));
}

std::string NameOf(const char (&src)[SANLK_NAME_LEN]) { return std::string(src, strnlen(src, SANLK_NAME_LEN)); }

void FillDisk(sanlk_disk& d, const std::string& path, uint64_t offset) {
  std::memset(&d, 0, sizeof d);
  std::memcpy(d.path, path.data(), path.size());  // size < SANLK_PATH_LEN: NUL stays
  d.offset = offset;
}

// A sanlk_resource followed by its one disk (sanlk_resource ends in a
// zero-length disks[] array).
class OneDiskResource {
 public:
  OneDiskResource(const std::string& lockspace, const std::string& name, const std::string& path, uint64_t offset)
      : buf_(new uint64_t[kWords]()) {
    sanlk_resource* r = get();
    CopyName(r->lockspace_name, lockspace);
    CopyName(r->name, name);
    r->num_disks = 1;
    FillDisk(r->disks[0], path, offset);
  }
  sanlk_resource* get() { return reinterpret_cast<sanlk_resource*>(buf_.get()); }

 private:
  static constexpr size_t kWords = (sizeof(sanlk_resource) + sizeof(sanlk_disk) + 7) / 8;
  std::unique_ptr<uint64_t[]> buf_;
};

void FillLockspace(sanlk_lockspace& ls, const std::string& name, uint64_t hostId, const std::string& path,
                   uint64_t offset) {
  std::memset(&ls, 0, sizeof ls);
  CopyName(ls.name, name);
  ls.host_id = hostId;
  FillDisk(ls.host_id_disk, path, offset);
}

std::string Target(const std::string& lockspace, const std::string& name, const std::string& path, uint64_t offset) {
  return lockspace + ":" + name + ":" + path + ":" + std::to_string(offset);
}

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

// ---------- daemon-less (direct) storage formatting ----------

// sanlockDirectInitLockspace(name, path, offset, lsFlags, ioTimeoutSec)
Napi::Value DirectInitLockspace(const Napi::CallbackInfo& info) {
  std::string name = ArgName(info, 0, "lockspace name");
  std::string path = ArgPath(info, 1, "path");
  uint64_t offset = ArgUInt64(info, 2, "offset");
  uint32_t flags = ArgU32(info, 3, "flags");
  uint32_t ioTimeout = ArgU32(info, 4, "ioTimeoutSec");
  return Queue(info.Env(), Lane::Dedicated, [=]() -> Builder {
    sanlk_lockspace ls;
    FillLockspace(ls, name, 0, path, offset);
    ls.flags = flags;  // SANLK_LSF_ALIGN* | SANLK_LSF_SECTOR*, or 0 for sanlock's default
    int rv = sanlock_direct_write_lockspace(&ls, 0, 0, ioTimeout);
    if (rv < 0) SanlockFail(rv, "direct write_lockspace", name + ":" + path + ":" + std::to_string(offset));
    return Undefined();
  });
}

// sanlockDirectInitResource(lockspace, name, path, offset, resFlags, numHosts, clear)
Napi::Value DirectInitResource(const Napi::CallbackInfo& info) {
  std::string lockspace = ArgName(info, 0, "lockspace name");
  std::string name = ArgName(info, 1, "resource name");
  std::string path = ArgPath(info, 2, "path");
  uint64_t offset = ArgUInt64(info, 3, "offset");
  uint32_t flags = ArgU32(info, 4, "flags");
  uint32_t numHosts = ArgU32(info, 5, "numHosts");
  bool clear = info[6].IsBoolean() && info[6].As<Napi::Boolean>().Value();
  return Queue(info.Env(), Lane::Dedicated, [=]() -> Builder {
    OneDiskResource res(lockspace, name, path, offset);
    res.get()->flags = flags;  // SANLK_RES_ALIGN* | SANLK_RES_SECTOR*, or 0
    int rv = sanlock_direct_write_resource(res.get(), 0, static_cast<int>(numHosts), clear ? SANLK_WRITE_CLEAR : 0);
    if (rv < 0) SanlockFail(rv, "direct write_resource", Target(lockspace, name, path, offset));
    return Undefined();
  });
}

// ---------- daemon: lockspaces ----------

// sanlockVersion() -> { version, proto }; fails (e.g. -ENOENT, -ECONNREFUSED)
// when no daemon listens on /run/sanlock/sanlock.sock of this mount namespace.
Napi::Value Version(const Napi::CallbackInfo& info) {
  return Queue(info.Env(), Lane::Pool, []() -> Builder {
    uint32_t version = 0, proto = 0;
    int rv = sanlock_version(0, &version, &proto);
    if (rv < 0) SanlockFail(rv, "version", "");
    return [version, proto](Napi::Env env) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("version", Napi::Number::New(env, version));
      o.Set("proto", Napi::Number::New(env, proto));
      return o;
    };
  });
}

// sanlockAddLockspace(name, hostId, path, offset, ioTimeoutSec, flags)
Napi::Value AddLockspace(const Napi::CallbackInfo& info) {
  std::string name = ArgName(info, 0, "lockspace name");
  uint64_t hostId = ArgUInt64(info, 1, "hostId");
  std::string path = ArgPath(info, 2, "path");
  uint64_t offset = ArgUInt64(info, 3, "offset");
  uint32_t ioTimeout = ArgU32(info, 4, "ioTimeoutSec");
  uint32_t flags = ArgU32(info, 5, "flags");
  return Queue(info.Env(), Lane::Dedicated, [=]() -> Builder {
    sanlk_lockspace ls;
    FillLockspace(ls, name, hostId, path, offset);
    int rv = sanlock_add_lockspace_timeout(&ls, flags, ioTimeout);
    if (rv < 0) SanlockFail(rv, "add_lockspace", name + ":" + std::to_string(hostId) + ":" + path + ":" +
                                                   std::to_string(offset));
    return Undefined();
  });
}

// sanlockRemLockspace(name, hostId, path, offset, flags)
Napi::Value RemLockspace(const Napi::CallbackInfo& info) {
  std::string name = ArgName(info, 0, "lockspace name");
  uint64_t hostId = ArgUInt64(info, 1, "hostId");
  std::string path = ArgPath(info, 2, "path");
  uint64_t offset = ArgUInt64(info, 3, "offset");
  uint32_t flags = ArgU32(info, 4, "flags");
  return Queue(info.Env(), Lane::Dedicated, [=]() -> Builder {
    sanlk_lockspace ls;
    FillLockspace(ls, name, hostId, path, offset);
    int rv = sanlock_rem_lockspace(&ls, flags);
    if (rv < 0) SanlockFail(rv, "rem_lockspace", name + ":" + std::to_string(hostId));
    return Undefined();
  });
}

// sanlockInqLockspace(name, hostId, path, offset) -> 0 (joined), -ENOENT
// (not joined) or -EINPROGRESS (being added or removed); other results reject.
Napi::Value InqLockspace(const Napi::CallbackInfo& info) {
  std::string name = ArgName(info, 0, "lockspace name");
  uint64_t hostId = ArgUInt64(info, 1, "hostId");
  std::string path = ArgPath(info, 2, "path");
  uint64_t offset = ArgUInt64(info, 3, "offset");
  return Queue(info.Env(), Lane::Dedicated, [=]() -> Builder {
    sanlk_lockspace ls;
    FillLockspace(ls, name, hostId, path, offset);
    int rv = sanlock_inq_lockspace(&ls, 0);
    if (rv < 0 && rv != -ENOENT && rv != -EINPROGRESS) SanlockFail(rv, "inq_lockspace", name);
    return Int(rv);
  });
}

// sanlockGetLockspaces() -> [{ name, hostId, path, offset, flags }]
Napi::Value GetLockspaces(const Napi::CallbackInfo& info) {
  return Queue(info.Env(), Lane::Pool, []() -> Builder {
    sanlk_lockspace* lss = nullptr;
    int count = 0;
    int rv = sanlock_get_lockspaces(&lss, &count, 0);
    if (rv < 0) {
      free(lss);
      SanlockFail(rv, "get_lockspaces", "");
    }
    struct Ls { std::string name, path; uint64_t hostId, offset; uint32_t flags; };
    auto out = std::make_shared<std::vector<Ls>>();
    for (int i = 0; i < count && lss != nullptr; i++) {
      const sanlk_lockspace& l = lss[i];
      out->push_back({NameOf(l.name), std::string(l.host_id_disk.path, strnlen(l.host_id_disk.path, SANLK_PATH_LEN)),
                      l.host_id, l.host_id_disk.offset, l.flags});
    }
    free(lss);
    return [out](Napi::Env env) {
      Napi::Array a = Napi::Array::New(env, out->size());
      for (size_t i = 0; i < out->size(); i++) {
        const Ls& l = (*out)[i];
        Napi::Object o = Napi::Object::New(env);
        o.Set("name", l.name);
        o.Set("hostId", SafeInteger(env, static_cast<unsigned long long>(l.hostId)));
        o.Set("path", l.path);
        o.Set("offset", SafeInteger(env, static_cast<unsigned long long>(l.offset)));
        o.Set("flags", Napi::Number::New(env, l.flags));
        a.Set(static_cast<uint32_t>(i), o);
      }
      return a;
    };
  });
}

struct HostInfo {
  uint64_t hostId, generation, timestamp;
  uint32_t ioTimeout, flags;
};

Napi::Value HostsToJs(Napi::Env env, const std::vector<HostInfo>& hosts) {
  Napi::Array a = Napi::Array::New(env, hosts.size());
  for (size_t i = 0; i < hosts.size(); i++) {
    const HostInfo& h = hosts[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("hostId", SafeInteger(env, static_cast<unsigned long long>(h.hostId)));
    o.Set("generation", SafeInteger(env, static_cast<unsigned long long>(h.generation)));
    o.Set("timestamp", SafeInteger(env, static_cast<unsigned long long>(h.timestamp)));
    o.Set("ioTimeout", Napi::Number::New(env, h.ioTimeout));
    o.Set("flags", Napi::Number::New(env, h.flags));
    a.Set(static_cast<uint32_t>(i), o);
  }
  return a;
}

// sanlockGetHosts(lockspace, hostId) -> [{ hostId, generation, timestamp, ioTimeout, flags }]
// hostId 0: every host seen alive; flags & SANLK_HOST_MASK is the host state.
Napi::Value GetHosts(const Napi::CallbackInfo& info) {
  std::string name = ArgName(info, 0, "lockspace name");
  uint64_t hostId = ArgUInt64(info, 1, "hostId");
  return Queue(info.Env(), Lane::Pool, [=]() -> Builder {
    sanlk_host* hss = nullptr;
    int count = 0;
    int rv = sanlock_get_hosts(name.c_str(), hostId, &hss, &count, 0);
    if (rv < 0) {
      free(hss);
      SanlockFail(rv, "get_hosts", name);
    }
    std::vector<HostInfo> hosts;
    for (int i = 0; i < count && hss != nullptr; i++) {
      hosts.push_back({hss[i].host_id, hss[i].generation, hss[i].timestamp, hss[i].io_timeout, hss[i].flags});
    }
    free(hss);
    return [hosts = std::move(hosts)](Napi::Env env) { return HostsToJs(env, hosts); };
  });
}

// ---------- daemon: resource leases on disk ----------

// sanlockReadResourceOwners(lockspace, name, path, offset, flags)
//   -> { lver, flags, owners: [{ hostId, generation, timestamp, ... }] }
// Reads the lease area from storage through the daemon (no lockspace
// membership needed). An exclusive owner that released the lease is not
// listed (empty owners); lver is the leader record's version.
Napi::Value ReadResourceOwners(const Napi::CallbackInfo& info) {
  std::string lockspace = ArgName(info, 0, "lockspace name");
  std::string name = ArgName(info, 1, "resource name");
  std::string path = ArgPath(info, 2, "path");
  uint64_t offset = ArgUInt64(info, 3, "offset");
  uint32_t flags = ArgU32(info, 4, "flags");
  return Queue(info.Env(), Lane::Dedicated, [=]() -> Builder {
    OneDiskResource res(lockspace, name, path, offset);
    sanlk_host* hss = nullptr;
    int count = 0;
    int rv = sanlock_read_resource_owners(res.get(), flags, &hss, &count);
    if (rv < 0) {
      free(hss);
      SanlockFail(rv, "read_resource_owners", Target(lockspace, name, path, offset));
    }
    std::vector<HostInfo> owners;
    for (int i = 0; i < count && hss != nullptr; i++) {
      owners.push_back({hss[i].host_id, hss[i].generation, hss[i].timestamp, hss[i].io_timeout, hss[i].flags});
    }
    free(hss);
    uint64_t lver = res.get()->lver;
    uint32_t resFlags = res.get()->flags;
    return [owners = std::move(owners), lver, resFlags](Napi::Env env) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("lver", SafeInteger(env, static_cast<unsigned long long>(lver)));
      o.Set("flags", Napi::Number::New(env, resFlags));
      o.Set("owners", HostsToJs(env, owners));
      return o;
    };
  });
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
  exports.Set("sanlockStrerror", Napi::Function::New(env, Strerror));
  exports.Set("sanlockDirectInitLockspace", Napi::Function::New(env, DirectInitLockspace));
  exports.Set("sanlockDirectInitResource", Napi::Function::New(env, DirectInitResource));
  exports.Set("sanlockVersion", Napi::Function::New(env, Version));
  exports.Set("sanlockAddLockspace", Napi::Function::New(env, AddLockspace));
  exports.Set("sanlockRemLockspace", Napi::Function::New(env, RemLockspace));
  exports.Set("sanlockInqLockspace", Napi::Function::New(env, InqLockspace));
  exports.Set("sanlockGetLockspaces", Napi::Function::New(env, GetLockspaces));
  exports.Set("sanlockGetHosts", Napi::Function::New(env, GetHosts));
  exports.Set("sanlockReadResourceOwners", Napi::Function::New(env, ReadResourceOwners));
  exports.Set("sanlockRegister", Napi::Function::New(env, Register));
  exports.Set("sanlockUnregister", Napi::Function::New(env, Unregister));
  exports.Set("sanlockRestrict", Napi::Function::New(env, Restrict));
  exports.Set("sanlockKillpath", Napi::Function::New(env, Killpath));
  exports.Set("sanlockAcquire", Napi::Function::New(env, Acquire));
  exports.Set("sanlockRelease", Napi::Function::New(env, Release));
  exports.Set("sanlockInquire", Napi::Function::New(env, Inquire));
}

}  // namespace hv
