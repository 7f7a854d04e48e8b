#include "common/kube/config.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace mcl::kube {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", what, " ", path,
                                            ": ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Resolve(absl::string_view base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return absl::StrCat(base_dir, "/", path);
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// A scalar field of a YAML map, "" when absent. Throws YAML exceptions on a
// non-scalar (caught by the caller, which adds where).
std::string Scalar(const YAML::Node& map, const char* key) {
  YAML::Node n = map[key];
  if (!n.IsDefined() || n.IsNull()) return "";
  if (!n.IsScalar())
    throw std::runtime_error(absl::StrCat("field ", key, " is not a scalar"));
  return n.as<std::string>();
}

// The entry of a named list (clusters, users, contexts) called `name`, and its
// `inner` map.
YAML::Node Named(const YAML::Node& root, const char* list, const char* inner,
                 const std::string& name) {
  YAML::Node l = root[list];
  if (!l.IsDefined() || l.IsNull())
    return YAML::Node(YAML::NodeType::Undefined);
  if (!l.IsSequence())
    throw std::runtime_error(absl::StrCat("\"", list, "\" is not a list"));
  for (const YAML::Node& e : l) {
    if (e.IsMap() && Scalar(e, "name") == name) {
      YAML::Node in = e[inner];
      if (!in.IsDefined() || in.IsNull())
        return YAML::Node(YAML::NodeType::Map);
      if (!in.IsMap())
        throw std::runtime_error(absl::StrCat(list, " entry \"", name, "\": \"",
                                              inner, "\" is not a map"));
      return in;
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

// PEM from `<key>-data` (base64) or from the file at `<key>`.
absl::StatusOr<std::string> PemFrom(const YAML::Node& map,
                                    const std::string& key,
                                    absl::string_view base_dir,
                                    absl::string_view where) {
  std::string data = Scalar(map, (key + "-data").c_str());
  if (!data.empty()) {
    std::string decoded;
    if (!absl::Base64Unescape(data, &decoded)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", key, "-data is not valid base64"));
    }
    if (!absl::StrContains(decoded, "-----BEGIN")) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", key, "-data does not decode to PEM"));
    }
    return decoded;
  }
  std::string file = Scalar(map, key.c_str());
  if (file.empty()) return std::string();
  auto pem = ReadFile(Resolve(base_dir, file), key);
  if (!pem.ok())
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", pem.status().message()));
  if (!absl::StrContains(*pem, "-----BEGIN")) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": ", key, " file ", Resolve(base_dir, file), " is not PEM"));
  }
  return pem;
}

// The context's cluster: the server and how to trust it. May throw YAML
// exceptions, as ParseKubeconfigOrThrow.
absl::Status ApplyCluster(const YAML::Node& root,
                          const std::string& cluster_name,
                          absl::string_view base_dir, const std::string& where,
                          Config& c) {
  YAML::Node cluster = Named(root, "clusters", "cluster", cluster_name);
  if (!cluster.IsDefined()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": cluster \"", cluster_name, "\" not found"));
  }
  c.server = Scalar(cluster, "server");
  if (c.server.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": cluster \"", cluster_name, "\" has no server"));
  }
  while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
  YAML::Node insecure = cluster["insecure-skip-tls-verify"];
  if (insecure.IsDefined() && !insecure.IsNull())
    c.insecure_skip_tls_verify = insecure.as<bool>();
  if (!Scalar(cluster, "proxy-url").empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": proxy-url is not supported"));
  }
  auto ca = PemFrom(cluster, "certificate-authority", base_dir, where);
  if (!ca.ok()) return ca.status();
  c.ca_pem = *ca;
  return absl::OkStatus();
}

// The context's user: a token, a token file or a client certificate; plugins
// and basic auth get a clear error. May throw YAML exceptions.
absl::Status ApplyUser(const YAML::Node& root, const std::string& user_name,
                       absl::string_view base_dir, const std::string& where,
                       Config& c) {
  YAML::Node user = Named(root, "users", "user", user_name);
  if (!user.IsDefined()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": user \"", user_name, "\" not found"));
  }
  if (user["exec"].IsDefined() || user["auth-provider"].IsDefined()) {
    return absl::UnimplementedError(
        absl::StrCat(where, ": user \"", user_name,
                     "\" uses an exec or auth-provider credential plugin, "
                     "which mcl does not support; use a "
                     "token, tokenFile or client certificate"));
  }
  if (!Scalar(user, "username").empty() || !Scalar(user, "password").empty()) {
    return absl::UnimplementedError(absl::StrCat(
        where, ": basic authentication (username/password) is not supported"));
  }
  c.token = Scalar(user, "token");
  std::string token_file = Scalar(user, "tokenFile");
  if (!token_file.empty()) c.token_file = Resolve(base_dir, token_file);
  auto cert = PemFrom(user, "client-certificate", base_dir, where);
  if (!cert.ok()) return cert.status();
  auto key = PemFrom(user, "client-key", base_dir, where);
  if (!key.ok()) return key.status();
  c.client_cert_pem = *cert;
  c.client_key_pem = *key;
  if (c.client_cert_pem.empty() != c.client_key_pem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": client certificate and key must be given together"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Config> ParseKubeconfigOrThrow(absl::string_view yaml,
                                              absl::string_view base_dir,
                                              absl::string_view context_flag,
                                              absl::string_view source) {
  YAML::Node root = YAML::Load(std::string(yaml));
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a YAML map"));
  }
  std::string kind = Scalar(root, "kind");
  if (!kind.empty() && kind != "Config") {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": kind is \"", kind, "\", expected Config"));
  }
  std::string context_name = context_flag.empty()
                                 ? Scalar(root, "current-context")
                                 : std::string(context_flag);
  if (context_name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": no current-context and no context given"));
  }
  std::string where = absl::StrCat(source, " (context ", context_name, ")");
  YAML::Node ctx = Named(root, "contexts", "context", context_name);
  if (!ctx.IsDefined()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": context not found"));
  }
  Config c;
  c.source = where;
  std::string ns = Scalar(ctx, "namespace");
  if (!ns.empty()) c.namespace_ = ns;
  if (absl::Status s =
          ApplyCluster(root, Scalar(ctx, "cluster"), base_dir, where, c);
      !s.ok()) {
    return s;
  }
  std::string user_name = Scalar(ctx, "user");
  if (!user_name.empty()) {
    if (absl::Status s = ApplyUser(root, user_name, base_dir, where, c);
        !s.ok()) {
      return s;
    }
  }
  return c;
}

}  // namespace

absl::StatusOr<Config> ParseKubeconfig(absl::string_view yaml,
                                       absl::string_view base_dir,
                                       absl::string_view context,
                                       absl::string_view source) {
  try {
    return ParseKubeconfigOrThrow(yaml, base_dir, context, source);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": invalid YAML: ", e.what()));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
}

absl::StatusOr<Config> LoadKubeconfigFile(const std::string& path,
                                          absl::string_view context) {
  auto text = ReadFile(path, "kubeconfig");
  if (!text.ok()) return text.status();
  return ParseKubeconfig(*text, DirName(path), context,
                         absl::StrCat("kubeconfig ", path));
}

absl::StatusOr<Config> LoadInCluster(const InClusterOptions& options) {
  std::string host = options.host, port = options.port;
  if (host.empty()) {
    const char* h = std::getenv("KUBERNETES_SERVICE_HOST");
    host = h != nullptr ? h : "";
  }
  if (port.empty()) {
    const char* p = std::getenv("KUBERNETES_SERVICE_PORT");
    port = p != nullptr ? p : "";
  }
  if (host.empty() || port.empty()) {
    return absl::FailedPreconditionError(
        "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
        "must be set");
  }
  Config c;
  c.source = absl::StrCat("in-cluster (", options.dir, ")");
  c.server = absl::StrContains(host, ":")
                 ? absl::StrCat("https://[", host, "]:", port)
                 : absl::StrCat("https://", host, ":", port);
  c.token_file = options.dir + "/token";
  // The token must be readable now; later rotations are picked up by
  // TokenSource.
  auto token = ReadFile(c.token_file, "service-account token");
  if (!token.ok()) return token.status();
  auto ca = ReadFile(options.dir + "/ca.crt", "service-account CA");
  if (!ca.ok()) return ca.status();
  if (!absl::StrContains(*ca, "-----BEGIN")) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.dir, "/ca.crt is not PEM"));
  }
  c.ca_pem = *ca;
  auto ns = ReadFile(options.dir + "/namespace", "namespace");
  if (ns.ok() && !absl::StripAsciiWhitespace(*ns).empty()) {
    c.namespace_ = std::string(absl::StripAsciiWhitespace(*ns));
  }
  return c;
}

absl::StatusOr<Config> LoadConfig(const std::string& kubeconfig_flag,
                                  absl::string_view context) {
  if (!kubeconfig_flag.empty())
    return LoadKubeconfigFile(kubeconfig_flag, context);
  const char* env = std::getenv("KUBECONFIG");
  if (env != nullptr && *env != '\0') {
    for (absl::string_view p : absl::StrSplit(env, ':', absl::SkipEmpty())) {
      struct stat st;
      if (stat(std::string(p).c_str(), &st) == 0)
        return LoadKubeconfigFile(std::string(p), context);
    }
    return absl::NotFoundError(
        absl::StrCat("none of the files in KUBECONFIG=", env, " exists"));
  }
  if (std::getenv("KUBERNETES_SERVICE_HOST") != nullptr) return LoadInCluster();
  const char* home = std::getenv("HOME");
  if (home != nullptr) {
    std::string path = absl::StrCat(home, "/.kube/config");
    struct stat st;
    if (stat(path.c_str(), &st) == 0) return LoadKubeconfigFile(path, context);
  }
  return absl::NotFoundError(
      "no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or run "
      "in a cluster");
}

std::shared_ptr<TokenSource> TokenSource::Static(std::string token) {
  std::shared_ptr<TokenSource> t(new TokenSource());
  absl::MutexLock l(&t->mu_);
  t->token_ = std::move(token);
  return t;
}

std::shared_ptr<TokenSource> TokenSource::FromFile(std::string path,
                                                   Clock* clock,
                                                   absl::Duration max_age) {
  std::shared_ptr<TokenSource> t(new TokenSource());
  t->path_ = std::move(path);
  t->clock_ = clock;
  t->max_age_ = max_age;
  return t;
}

absl::StatusOr<std::string> TokenSource::ReadLocked(bool force) {
  struct stat st;
  std::string key;
  if (stat(path_.c_str(), &st) == 0) {
    key = absl::StrCat(st.st_dev, ":", st.st_ino, ":", st.st_size, ":",
                       st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
  }
  absl::Duration now = clock_->Monotonic();
  if (!force && !token_.empty() && key == stat_key_ &&
      now - read_at_ < max_age_)
    return token_;
  auto text = ReadFile(path_, "token file");
  if (!text.ok()) {
    if (!token_.empty())
      return token_;  // keep the last good token through a transient failure
    return text.status();
  }
  std::string token(absl::StripAsciiWhitespace(*text));
  if (token.empty()) {
    if (!token_.empty()) return token_;
    return absl::FailedPreconditionError(
        absl::StrCat("token file ", path_, " is empty"));
  }
  token_ = token;
  stat_key_ = key;
  read_at_ = now;
  return token_;
}

absl::StatusOr<std::string> TokenSource::Token() {
  absl::MutexLock l(&mu_);
  if (path_.empty()) return token_;
  return ReadLocked(false);
}

bool TokenSource::Refresh() {
  absl::MutexLock l(&mu_);
  if (path_.empty()) return false;
  std::string before = token_;
  auto t = ReadLocked(true);
  return t.ok() && *t != before;
}

}  // namespace mcl::kube
