#include "sidecar/validate.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace mcl::sidecar {
namespace {

bool AlnumLower(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

}  // namespace

absl::Status ValidateLockName(const std::string& name,
                              const std::string& field) {
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field,
                     " is empty; name the lock (a DNS-1123 "
                     "subdomain such as \"my-app.leader\")"));
  }
  if (name.size() > 253) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", name.size(),
                     " characters long; at most 253 are allowed"));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!AlnumLower(c) && c != '-' && c != '.') {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " \"", name, "\" has '", std::string(1, c),
                       "' at position ", i,
                       "; use only lowercase letters, digits, '-' and '.' (a "
                       "DNS-1123 subdomain)"));
    }
  }
  if (!AlnumLower(name.front()) || !AlnumLower(name.back())) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " \"", name,
                     "\" must start and end with a lowercase letter or digit"));
  }
  for (size_t i = 0; i + 1 < name.size(); ++i) {
    if (name[i] == '.' && (name[i + 1] == '.' || name[i + 1] == '-')) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " \"", name,
          "\": each '.'-separated part must start with a letter or digit"));
    }
    if (name[i] == '-' && name[i + 1] == '.') {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " \"", name,
          "\": each '.'-separated part must end with a letter or digit"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateNamespace(const std::string& ns,
                               const std::string& field) {
  if (ns.size() > 63) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", ns.size(),
                     " characters long; a namespace has at most 63"));
  }
  if (ns.find('.') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " \"", ns, "\" contains '.'; a namespace is a DNS-1123 label"));
  }
  return ValidateLockName(ns, field);
}

absl::Status ValidateIdentity(const std::string& identity,
                              const std::string& field) {
  if (identity.size() > kMaxIdentityLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", identity.size(), " bytes long; at most ",
                     kMaxIdentityLength, " are allowed"));
  }
  for (size_t i = 0; i < identity.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(identity[i]);
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " has a byte 0x", absl::Hex(c), " at position ",
                       i, "; use printable ASCII without spaces"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateLeaseDuration(int64_t seconds, const std::string& field) {
  if (seconds == 0) return absl::OkStatus();
  if (seconds < 2 || seconds > 3600) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " is ", seconds,
        "; use 0 for the sidecar's default or a value in [2, 3600]"));
  }
  return absl::OkStatus();
}

std::string IdentityFromEnv() {
  const char* name_env = std::getenv("POD_NAME");
  const char* uid_env = std::getenv("POD_UID");
  if (name_env == nullptr || *name_env == '\0') return "";
  std::string name = name_env;
  std::string uid = uid_env == nullptr ? "" : uid_env;
  // Pod names may be 253 characters, identities 128: the default must still
  // be valid, unique and the same after a restart. The UID makes it unique, so
  // the name gives way; without a UID, a stable hash (FNV-1a) of the full name
  // keeps long names apart.
  if (uid.empty()) {
    if (name.size() <= kMaxIdentityLength) return name;
    uint64_t h = 14695981039346656037ull;
    for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
    return absl::StrCat(name.substr(0, kMaxIdentityLength - 17), "-",
                        absl::Hex(h, absl::kZeroPad16));
  }
  if (uid.size() > kMaxIdentityLength / 2) uid.resize(kMaxIdentityLength / 2);
  const size_t room = kMaxIdentityLength - uid.size() - 1;
  if (name.size() > room) name.resize(room);
  return absl::StrCat(name, "_", uid);
}

}  // namespace mcl::sidecar
