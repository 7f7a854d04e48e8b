#include "common/kube/json.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"

namespace mcl::kube {

namespace {

// The first field name that appears twice in one object anywhere in `v`.
// cpprestsdk keeps both copies, and its lookups then find either (or, in a
// sorted object broken by the duplicate, neither): the decoders would read
// different values on different paths. An apiserver never sends one.
// Iterative, so a deeply nested document cannot exhaust the stack.
std::optional<std::string> DuplicateField(const Json& v) {
  std::vector<const Json*> pending{&v};
  std::vector<std::string> keys;
  while (!pending.empty()) {
    const Json* j = pending.back();
    pending.pop_back();
    if (j->is_object()) {
      keys.clear();
      for (const auto& [key, child] : j->as_object()) {
        keys.push_back(key);
        pending.push_back(&child);
      }
      std::sort(keys.begin(), keys.end());
      auto dup = std::adjacent_find(keys.begin(), keys.end());
      if (dup != keys.end()) return *dup;
    } else if (j->is_array()) {
      for (const Json& child : j->as_array()) pending.push_back(&child);
    }
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view what) {
  if (text.empty()) {
    return absl::InternalError(
        absl::StrCat(what, ": empty body where JSON was expected"));
  }
  std::error_code ec;
  Json v;
  try {
    v = Json::parse(std::string(text), ec);
  } catch (const std::exception&
               e) {  // parse(…, ec) should not throw; be safe anyway
    return absl::InternalError(absl::StrCat(what, ": malformed JSON (",
                                            e.what(),
                                            "); body starts: ", Snippet(text)));
  }
  if (ec) {
    return absl::InternalError(absl::StrCat(what, ": malformed JSON (",
                                            ec.message(),
                                            "); body starts: ", Snippet(text)));
  }
  if (std::optional<std::string> dup = DuplicateField(v)) {
    return absl::InternalError(absl::StrCat(
        what, ": malformed JSON (the field \"", Snippet(*dup),
        "\" appears twice in one object); body starts: ", Snippet(text)));
  }
  return v;
}

std::string Snippet(absl::string_view body, size_t max) {
  std::string out;
  for (size_t i = 0; i < body.size() && i < max; ++i) {
    unsigned char c = static_cast<unsigned char>(body[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      out += absl::StrCat("\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      out += static_cast<char>(c);
    }
  }
  if (body.size() > max) absl::StrAppend(&out, "... (", body.size(), " bytes)");
  return out;
}

const char* JsonTypeName(const Json& v) {
  switch (v.type()) {
    case Json::Number:
      return v.is_integer() ? "integer" : "number";
    case Json::Boolean:
      return "boolean";
    case Json::String:
      return "string";
    case Json::Object:
      return "object";
    case Json::Array:
      return "array";
    case Json::Null:
      return "null";
  }
  return "unknown";
}

namespace {
std::string Join(absl::string_view path, absl::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
}
}  // namespace

const Json* JsonReader::Present(const Json& obj, absl::string_view key) {
  if (!obj.is_object()) return nullptr;
  const auto& o = obj.as_object();
  auto it = o.find(std::string(key));
  if (it == o.end() || it->second.is_null()) return nullptr;
  return &it->second;
}

void JsonReader::Fail(absl::string_view path, absl::string_view problem) {
  if (error_.empty()) error_ = absl::StrCat(path, ": ", problem);
}

absl::Status JsonReader::status() const {
  if (error_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what_, ": ", error_));
}

const Json* JsonReader::Object(const Json& obj, absl::string_view key,
                               absl::string_view path) {
  const Json* v = Present(obj, key);
  if (v == nullptr) return nullptr;
  if (!v->is_object()) {
    Fail(Join(path, key),
         absl::StrCat("expected object, got ", JsonTypeName(*v)));
    return nullptr;
  }
  return v;
}

const Json* JsonReader::Array(const Json& obj, absl::string_view key,
                              absl::string_view path) {
  const Json* v = Present(obj, key);
  if (v == nullptr) return nullptr;
  if (!v->is_array()) {
    Fail(Join(path, key),
         absl::StrCat("expected array, got ", JsonTypeName(*v)));
    return nullptr;
  }
  return v;
}

std::optional<std::string> JsonReader::String(const Json& obj,
                                              absl::string_view key,
                                              absl::string_view path) {
  const Json* v = Present(obj, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) {
    Fail(Join(path, key),
         absl::StrCat("expected string, got ", JsonTypeName(*v)));
    return std::nullopt;
  }
  return v->as_string();
}

std::optional<int64_t> JsonReader::Int(const Json& obj, absl::string_view key,
                                       absl::string_view path) {
  const Json* v = Present(obj, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_integer() || !v->as_number().is_int64()) {
    Fail(Join(path, key),
         absl::StrCat("expected integer, got ", JsonTypeName(*v)));
    return std::nullopt;
  }
  return v->as_number().to_int64();
}

std::optional<int32_t> JsonReader::Int32(const Json& obj, absl::string_view key,
                                         absl::string_view path) {
  std::optional<int64_t> v = Int(obj, key, path);
  if (!v.has_value()) return std::nullopt;
  if (*v < std::numeric_limits<int32_t>::min() ||
      *v > std::numeric_limits<int32_t>::max()) {
    Fail(Join(path, key), absl::StrCat("expected a 32-bit integer, got ", *v));
    return std::nullopt;
  }
  return static_cast<int32_t>(*v);
}

std::optional<bool> JsonReader::Bool(const Json& obj, absl::string_view key,
                                     absl::string_view path) {
  const Json* v = Present(obj, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) {
    Fail(Join(path, key),
         absl::StrCat("expected boolean, got ", JsonTypeName(*v)));
    return std::nullopt;
  }
  return v->as_bool();
}

std::vector<std::string> JsonReader::StringList(const Json& obj,
                                                absl::string_view key,
                                                absl::string_view path) {
  std::vector<std::string> out;
  const Json* arr = Array(obj, key, path);
  if (arr == nullptr) return out;
  for (const Json& item : arr->as_array()) {
    if (!item.is_string()) {
      Fail(Join(path, key), absl::StrCat("expected array of strings, found ",
                                         JsonTypeName(item)));
      continue;
    }
    out.push_back(item.as_string());
  }
  return out;
}

std::map<std::string, std::string> JsonReader::StringMap(
    const Json& obj, absl::string_view key, absl::string_view path) {
  std::map<std::string, std::string> out;
  const Json* m = Object(obj, key, path);
  if (m == nullptr) return out;
  for (const auto& [k, v] : m->as_object()) {
    if (!v.is_string()) {
      Fail(Join(Join(path, key), k),
           absl::StrCat("expected string, got ", JsonTypeName(v)));
      continue;
    }
    out[k] = v.as_string();
  }
  return out;
}

void Erase(Json& obj, absl::string_view key) {
  if (!obj.is_object()) return;
  auto& o = obj.as_object();
  std::string k(key);
  if (o.find(k) != o.end()) o.erase(k);
}

void SetOrErase(Json& obj, absl::string_view key,
                const std::optional<std::string>& v) {
  if (v.has_value()) {
    obj[std::string(key)] = Json::string(*v);
  } else {
    Erase(obj, key);
  }
}

void SetOrEraseNonEmpty(Json& obj, absl::string_view key,
                        const std::string& v) {
  if (!v.empty()) {
    obj[std::string(key)] = Json::string(v);
  } else {
    Erase(obj, key);
  }
}

void SetOrEraseNonZero(Json& obj, absl::string_view key, int64_t v) {
  if (v != 0) {
    obj[std::string(key)] = Json::number(v);
  } else {
    Erase(obj, key);
  }
}

Json& ChildObject(Json& obj, absl::string_view key) {
  Json& child = obj[std::string(key)];
  if (!child.is_object()) child = Json::object();
  return child;
}

}  // namespace mcl::kube
