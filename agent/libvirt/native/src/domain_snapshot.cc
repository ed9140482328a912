// Live snapshots: external disk (and memory) snapshots, the guest agent's
// filesystem freeze and thaw around them, and the domain XML a saved memory
// image holds (to restore it onto other disks).
#include "domain_call.h"

namespace hv {

namespace {

Napi::Value SnapshotCreateXML(const Napi::CallbackInfo& info) {
  std::string xml = ArgString(info, 1, "xml");
  unsigned flags = ArgFlags(info, 2);
  // A memory snapshot can take minutes.
  return DomainCall(info, Lane::Dedicated, [xml, flags](virDomainPtr d) -> Builder {
    virDomainSnapshotPtr snap = virDomainSnapshotCreateXML(d, xml.c_str(), flags);
    if (snap == nullptr) Fail("virDomainSnapshotCreateXML failed");
    const char* name = virDomainSnapshotGetName(snap);
    std::string copy = name ? name : "";
    virDomainSnapshotFree(snap);
    return String(std::move(copy));
  });
}

// Both go through the guest agent, which may not answer for long: own thread.
// No mountpoints: every filesystem the agent knows. Resolve to the count.
#define FS_CALL(NAME, FN)                                                                    \
  Napi::Value NAME(const Napi::CallbackInfo& info) {                                         \
    unsigned flags = ArgFlags(info, 1);                                                       \
    return DomainCall(info, Lane::Dedicated, [flags](virDomainPtr d) -> Builder {            \
      int n = FN(d, nullptr, 0, flags);                                                       \
      if (n < 0) Fail(#FN " failed");                                                         \
      return Int(n);                                                                          \
    });                                                                                       \
  }
FS_CALL(FSFreeze, virDomainFSFreeze)
FS_CALL(FSThaw, virDomainFSThaw)
#undef FS_CALL

Napi::Value SaveImageGetXMLDesc(const Napi::CallbackInfo& info) {
  auto ref = RefConn(info[0]);
  std::string path = ArgString(info, 1, "path");
  unsigned flags = ArgFlags(info, 2);
  // Reads only the image's header.
  return Queue(info.Env(), Lane::Pool, [ref, path, flags]() -> Builder {
    char* s = virDomainSaveImageGetXMLDesc(ref->get(), path.c_str(), flags);
    if (s == nullptr) Fail("virDomainSaveImageGetXMLDesc failed");
    std::string copy(s);
    free(s);
    return String(std::move(copy));
  });
}

}  // namespace

void RegisterDomainSnapshot(Napi::Env env, Napi::Object exports) {
  exports.Set("domainSnapshotCreateXML", Napi::Function::New(env, SnapshotCreateXML));
  exports.Set("domainFSFreeze", Napi::Function::New(env, FSFreeze));
  exports.Set("domainFSThaw", Napi::Function::New(env, FSThaw));
  exports.Set("connSaveImageGetXMLDesc", Napi::Function::New(env, SaveImageGetXMLDesc));
}

}  // namespace hv
