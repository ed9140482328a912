// Bulk stats, block devices, device hotplug, migration and jobs,
// and guest-agent calls (snapshots: domain_snapshot.cc).
#include <libvirt/libvirt-qemu.h>

#include "domain_call.h"
#include "typed_params.h"

namespace hv {

namespace {

// ---------- stats ----------

struct StatsRecord {
  std::string name;
  std::string uuid;
  TypedList params;
};

Napi::Value GetAllDomainStats(const Napi::CallbackInfo& info) {
  auto ref = RefConn(info[0]);
  unsigned stats = info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  unsigned flags = ArgFlags(info, 2);
  return Queue(info.Env(), Lane::Pool, [ref, stats, flags]() -> Builder {
    virDomainStatsRecordPtr* records = nullptr;
    int n = virConnectGetAllDomainStats(ref->get(), stats, &records, flags);
    if (n < 0) Fail("virConnectGetAllDomainStats failed");
    std::vector<StatsRecord> out;
    out.reserve(n);
    for (int k = 0; k < n; k++) {
      StatsRecord r;
      const char* name = virDomainGetName(records[k]->dom);
      r.name = name ? name : "";
      char uuid[VIR_UUID_STRING_BUFLEN];
      if (virDomainGetUUIDString(records[k]->dom, uuid) == 0) r.uuid = uuid;
      r.params = CopyTypedParams(records[k]->params, records[k]->nparams);
      out.push_back(std::move(r));
    }
    virDomainStatsRecordListFree(records);
    return [out = std::move(out)](Napi::Env env) {
      Napi::Array arr = Napi::Array::New(env, out.size());
      for (size_t k = 0; k < out.size(); k++) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("name", out[k].name);
        o.Set("uuid", out[k].uuid);
        o.Set("stats", TypedParamsToJs(env, out[k].params));
        arr.Set(k, o);
      }
      return arr;
    };
  });
}

// ---------- block devices ----------

Napi::Value SetBlockThreshold(const Napi::CallbackInfo& info) {
  std::string dev = ArgString(info, 1, "dev");
  unsigned long long threshold = ArgUInt64(info, 2, "threshold");
  unsigned flags = ArgFlags(info, 3);
  return DomainVoidCall(info, Lane::Pool, [dev, threshold, flags](virDomainPtr d) {
    return virDomainSetBlockThreshold(d, dev.c_str(), threshold, flags);
  }, "virDomainSetBlockThreshold failed");
}

Napi::Value GetBlockInfo(const Napi::CallbackInfo& info) {
  std::string disk = ArgString(info, 1, "disk");
  unsigned flags = ArgFlags(info, 2);
  return DomainCall(info, Lane::Pool, [disk, flags](virDomainPtr d) -> Builder {
    virDomainBlockInfo bi;
    if (virDomainGetBlockInfo(d, disk.c_str(), &bi, flags) < 0) Fail("virDomainGetBlockInfo failed");
    return [bi](Napi::Env env) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("capacity", SafeInteger(env, static_cast<unsigned long long>(bi.capacity)));
      o.Set("allocation", SafeInteger(env, static_cast<unsigned long long>(bi.allocation)));
      o.Set("physical", SafeInteger(env, static_cast<unsigned long long>(bi.physical)));
      return o;
    };
  });
}

// The disks with an I/O error pending (why a domain paused on an I/O error: NO_SPACE is ENOSPC).
Napi::Value GetDiskErrors(const Napi::CallbackInfo& info) {
  unsigned flags = ArgFlags(info, 1);
  return DomainCall(info, Lane::Pool, [flags](virDomainPtr d) -> Builder {
    int n = virDomainGetDiskErrors(d, nullptr, 0, flags);
    if (n < 0) Fail("virDomainGetDiskErrors failed");
    std::vector<virDomainDiskError> errors(n > 0 ? n : 1);
    int got = n > 0 ? virDomainGetDiskErrors(d, errors.data(), n, flags) : 0;
    if (got < 0) Fail("virDomainGetDiskErrors failed");
    std::vector<std::pair<std::string, int>> out;
    for (int k = 0; k < got; k++) {
      out.emplace_back(errors[k].disk ? errors[k].disk : "", errors[k].error);
      free(errors[k].disk);
    }
    // One property per disk: its DomainDiskErrorCode.
    return [out = std::move(out)](Napi::Env env) {
      Napi::Object byDisk = Napi::Object::New(env);
      for (const auto& [disk, code] : out) byDisk.Set(disk, code);
      return byDisk;
    };
  });
}

// ---------- devices ----------

#define DEVICE_CALL(NAME, FN)                                                                     \
  Napi::Value NAME(const Napi::CallbackInfo& info) {                                              \
    std::string xml = ArgString(info, 1, "xml");                                                   \
    unsigned flags = ArgFlags(info, 2);                                                            \
    return DomainVoidCall(info, Lane::Pool, [xml, flags](virDomainPtr d) { return FN(d, xml.c_str(), flags); }, \
                          #FN " failed");                                                          \
  }
DEVICE_CALL(AttachDevice, virDomainAttachDeviceFlags)
DEVICE_CALL(DetachDevice, virDomainDetachDeviceFlags)
DEVICE_CALL(UpdateDevice, virDomainUpdateDeviceFlags)
DEVICE_CALL(DetachDeviceAlias, virDomainDetachDeviceAlias)
#undef DEVICE_CALL

// ---------- saved state (hibernation) ----------

Napi::Value SaveFlags(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 1, "path");
  OptString dxml = ArgOptString(info, 2);
  unsigned flags = ArgFlags(info, 3);
  // Writes all of the guest's RAM: seconds to minutes, never on the shared pool.
  return DomainVoidCall(info, Lane::Dedicated, [path, dxml, flags](virDomainPtr d) {
    return virDomainSaveFlags(d, path.c_str(), dxml.c_str(), flags);
  }, "virDomainSaveFlags failed");
}

// ---------- migration and jobs ----------

Napi::Value MigrateToURI3(const Napi::CallbackInfo& info) {
  OptString dconnuri = ArgOptString(info, 1);
  TypedList params = TypedParamsFromJs(info[2]);
  unsigned flags = ArgFlags(info, 3);
  // Blocks until the migration ends: never on the shared pool.
  return DomainVoidCall(info, Lane::Dedicated, [dconnuri, params, flags](virDomainPtr d) {
    TypedParamsBuffer buf(params);
    return virDomainMigrateToURI3(d, dconnuri.c_str(), buf.params(), buf.count(), flags);
  }, "virDomainMigrateToURI3 failed");
}

Napi::Value Migrate3(const Napi::CallbackInfo& info) {
  virDomainPtr d = UnwrapDomain(info[0]);
  auto dref = RefConn(info[1]);
  TypedList params = TypedParamsFromJs(info[2]);
  unsigned flags = ArgFlags(info, 3);
  return Queue(info.Env(), Lane::Dedicated, [d, dref, params, flags]() -> Builder {
    TypedParamsBuffer buf(params);
    virDomainPtr nd = virDomainMigrate3(d, dref->get(), buf.params(), buf.count(), flags);
    if (nd == nullptr) Fail("virDomainMigrate3 failed");
    return DomainResult(nd);
  }, {info[0], info[1]});
}

Napi::Value GetJobStats(const Napi::CallbackInfo& info) {
  unsigned flags = ArgFlags(info, 1);
  return DomainCall(info, Lane::Pool, [flags](virDomainPtr d) -> Builder {
    int type = 0, n = 0;
    virTypedParameterPtr params = nullptr;
    if (virDomainGetJobStats(d, &type, &params, &n, flags) < 0) Fail("virDomainGetJobStats failed");
    TypedList list = CopyTypedParams(params, n);
    virTypedParamsFree(params, n);
    return [type, list](Napi::Env env) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("type", type);
      o.Set("stats", TypedParamsToJs(env, list));
      return o;
    };
  });
}

Napi::Value AbortJob(const Napi::CallbackInfo& info) {
  return DomainVoidCall(info, Lane::Pool, [](virDomainPtr d) { return virDomainAbortJob(d); }, "virDomainAbortJob failed");
}

Napi::Value MigrateSetMaxDowntime(const Napi::CallbackInfo& info) {
  unsigned long long ms = ArgUInt64(info, 1, "downtime");
  unsigned flags = ArgFlags(info, 2);
  return DomainVoidCall(info, Lane::Pool, [ms, flags](virDomainPtr d) {
    return virDomainMigrateSetMaxDowntime(d, ms, flags);
  }, "virDomainMigrateSetMaxDowntime failed");
}

Napi::Value MigrateSetMaxSpeed(const Napi::CallbackInfo& info) {
  unsigned long bw = static_cast<unsigned long>(ArgUInt64(info, 1, "bandwidth"));
  unsigned flags = ArgFlags(info, 2);
  return DomainVoidCall(info, Lane::Pool, [bw, flags](virDomainPtr d) {
    return virDomainMigrateSetMaxSpeed(d, bw, flags);
  }, "virDomainMigrateSetMaxSpeed failed");
}

// Switches a running migration started with VIR_MIGRATE_POSTCOPY to post-copy.
Napi::Value MigrateStartPostCopy(const Napi::CallbackInfo& info) {
  unsigned flags = ArgFlags(info, 1);
  return DomainVoidCall(info, Lane::Pool, [flags](virDomainPtr d) {
    return virDomainMigrateStartPostCopy(d, flags);
  }, "virDomainMigrateStartPostCopy failed");
}

// ---------- guest ----------

Napi::Value QemuAgentCommand(const Napi::CallbackInfo& info) {
  std::string cmd = ArgString(info, 1, "command");
  int timeout = info[2].As<Napi::Number>().Int32Value();
  unsigned flags = ArgFlags(info, 3);
  return DomainStringCall(info, Lane::Dedicated, [cmd, timeout, flags](virDomainPtr d) {
    return virDomainQemuAgentCommand(d, cmd.c_str(), timeout, flags);
  }, "virDomainQemuAgentCommand failed");
}

struct IfaceAddr {
  int type;
  std::string addr;
  unsigned prefix;
};
struct Iface {
  std::string name, hwaddr;
  std::vector<IfaceAddr> addrs;
};

Napi::Value InterfaceAddresses(const Napi::CallbackInfo& info) {
  unsigned source = info[1].As<Napi::Number>().Uint32Value();
  unsigned flags = ArgFlags(info, 2);
  return DomainCall(info, Lane::Dedicated, [source, flags](virDomainPtr d) -> Builder {
    virDomainInterfacePtr* ifaces = nullptr;
    int n = virDomainInterfaceAddresses(d, &ifaces, source, flags);
    if (n < 0) Fail("virDomainInterfaceAddresses failed");
    std::vector<Iface> out;
    for (int k = 0; k < n; k++) {
      Iface f;
      f.name = ifaces[k]->name ? ifaces[k]->name : "";
      f.hwaddr = ifaces[k]->hwaddr ? ifaces[k]->hwaddr : "";
      for (unsigned a = 0; a < ifaces[k]->naddrs; a++) {
        const virDomainIPAddress& ip = ifaces[k]->addrs[a];
        f.addrs.push_back({ip.type, ip.addr ? ip.addr : "", ip.prefix});
      }
      out.push_back(std::move(f));
      virDomainInterfaceFree(ifaces[k]);
    }
    free(ifaces);
    return [out](Napi::Env env) {
      Napi::Array arr = Napi::Array::New(env, out.size());
      for (size_t k = 0; k < out.size(); k++) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("name", out[k].name);
        o.Set("hwaddr", out[k].hwaddr);
        Napi::Array addrs = Napi::Array::New(env, out[k].addrs.size());
        for (size_t a = 0; a < out[k].addrs.size(); a++) {
          Napi::Object ao = Napi::Object::New(env);
          ao.Set("type", out[k].addrs[a].type);
          ao.Set("addr", out[k].addrs[a].addr);
          ao.Set("prefix", out[k].addrs[a].prefix);
          addrs.Set(a, ao);
        }
        o.Set("addrs", addrs);
        arr.Set(k, o);
      }
      return arr;
    };
  });
}

Napi::Value SetTime(const Napi::CallbackInfo& info) {
  long long seconds = ArgInt64(info, 1, "seconds");
  unsigned nseconds = info[2].As<Napi::Number>().Uint32Value();
  unsigned flags = ArgFlags(info, 3);
  // Goes through the guest agent.
  return DomainVoidCall(info, Lane::Dedicated, [seconds, nseconds, flags](virDomainPtr d) {
    return virDomainSetTime(d, seconds, nseconds, flags);
  }, "virDomainSetTime failed");
}

}  // namespace

void RegisterDomainOps(Napi::Env env, Napi::Object exports) {
  exports.Set("getAllDomainStats", Napi::Function::New(env, GetAllDomainStats));
  exports.Set("domainSetBlockThreshold", Napi::Function::New(env, SetBlockThreshold));
  exports.Set("domainGetBlockInfo", Napi::Function::New(env, GetBlockInfo));
  exports.Set("domainGetDiskErrors", Napi::Function::New(env, GetDiskErrors));
  exports.Set("domainAttachDevice", Napi::Function::New(env, AttachDevice));
  exports.Set("domainDetachDevice", Napi::Function::New(env, DetachDevice));
  exports.Set("domainUpdateDevice", Napi::Function::New(env, UpdateDevice));
  exports.Set("domainDetachDeviceAlias", Napi::Function::New(env, DetachDeviceAlias));
  exports.Set("domainSave", Napi::Function::New(env, SaveFlags));
  exports.Set("domainMigrateToURI3", Napi::Function::New(env, MigrateToURI3));
  exports.Set("domainMigrate3", Napi::Function::New(env, Migrate3));
  exports.Set("domainGetJobStats", Napi::Function::New(env, GetJobStats));
  exports.Set("domainAbortJob", Napi::Function::New(env, AbortJob));
  exports.Set("domainMigrateSetMaxDowntime", Napi::Function::New(env, MigrateSetMaxDowntime));
  exports.Set("domainMigrateSetMaxSpeed", Napi::Function::New(env, MigrateSetMaxSpeed));
  exports.Set("domainMigrateStartPostCopy", Napi::Function::New(env, MigrateStartPostCopy));
  exports.Set("domainQemuAgentCommand", Napi::Function::New(env, QemuAgentCommand));
  exports.Set("domainInterfaceAddresses", Napi::Function::New(env, InterfaceAddresses));
  exports.Set("domainSetTime", Napi::Function::New(env, SetTime));
}

}  // namespace hv
