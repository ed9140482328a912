// sanlock binding, part 2: direct (daemon-less) formatting, lockspaces, and
// reads of lease areas. See sanlock.cc for the threading and error rules.
#include "sanlock_util.h"

namespace hv {

namespace {
using namespace sanlock_util;

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


}  // namespace

void RegisterSanlockLockspaces(Napi::Env env, Napi::Object exports) {
  exports.Set("sanlockDirectInitLockspace", Napi::Function::New(env, DirectInitLockspace));
  exports.Set("sanlockDirectInitResource", Napi::Function::New(env, DirectInitResource));
  exports.Set("sanlockVersion", Napi::Function::New(env, Version));
  exports.Set("sanlockAddLockspace", Napi::Function::New(env, AddLockspace));
  exports.Set("sanlockRemLockspace", Napi::Function::New(env, RemLockspace));
  exports.Set("sanlockInqLockspace", Napi::Function::New(env, InqLockspace));
  exports.Set("sanlockGetLockspaces", Napi::Function::New(env, GetLockspaces));
  exports.Set("sanlockGetHosts", Napi::Function::New(env, GetHosts));
  exports.Set("sanlockReadResourceOwners", Napi::Function::New(env, ReadResourceOwners));
}

}  // namespace hv
