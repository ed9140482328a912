// Helpers shared by the sanlock binding files (sanlock.cc, sanlock_lockspace.cc).
#pragma once

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
namespace sanlock_util {

constexpr int kSanlockDomain = -2;

inline std::string Meaning(int rv) {
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

[[noreturn]] inline void SanlockFail(int rv, const std::string& op, const std::string& target) {
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

inline std::string ArgName(const Napi::CallbackInfo& info, size_t i, const char* what) {
  std::string s = ArgString(info, i, what);
  if (s.empty() || s.size() > SANLK_NAME_LEN) {
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be 1.." + std::to_string(SANLK_NAME_LEN) +
                                                " bytes");
  }
  return s;
}

inline std::string ArgPath(const Napi::CallbackInfo& info, size_t i, const char* what) {
  std::string s = ArgString(info, i, what);
  if (s.empty() || s.size() >= SANLK_PATH_LEN) {
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be 1.." + std::to_string(SANLK_PATH_LEN - 1) +
                                                " bytes");
  }
  return s;
}

inline uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info[i].IsUndefined() || info[i].IsNull()) return 0;
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 4294967295.0) throw Napi::RangeError::New(info.Env(), std::string(what) + " is out of range");
  return static_cast<uint32_t>(d);
}

inline int ArgFd(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "fd must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

// ---------- C structs ----------

inline void CopyName(char (&dst)[SANLK_NAME_LEN], const std::string& src) {
  std::memset(dst, 0, SANLK_NAME_LEN);
  std::memcpy(dst, src.data(), std::min<size_t>(src.size(), SANLK_NAME_LEN));
}

inline std::string NameOf(const char (&src)[SANLK_NAME_LEN]) { return std::string(src, strnlen(src, SANLK_NAME_LEN)); }

inline void FillDisk(sanlk_disk& d, const std::string& path, uint64_t offset) {
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

inline void FillLockspace(sanlk_lockspace& ls, const std::string& name, uint64_t hostId, const std::string& path,
                   uint64_t offset) {
  std::memset(&ls, 0, sizeof ls);
  CopyName(ls.name, name);
  ls.host_id = hostId;
  FillDisk(ls.host_id_disk, path, offset);
}

inline std::string Target(const std::string& lockspace, const std::string& name, const std::string& path, uint64_t offset) {
  return lockspace + ":" + name + ":" + path + ":" + std::to_string(offset);
}


}  // namespace sanlock_util
}  // namespace hv
