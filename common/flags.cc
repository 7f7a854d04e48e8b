#include "common/flags.h"

#include <algorithm>
#include <cstdio>

#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"

namespace mcl::flags {
namespace {

bool Takes(const FlagSet& set, const std::string& name) {
  return std::find(set.names.begin(), set.names.end(), name) != set.names.end();
}

bool IsHelp(const std::string& name) {
  return name == "help" || name == "h" || name == "helpfull" ||
         name == "helpshort";
}

// What a value of `flag`'s type looks like, for "bad value" messages.
std::string Want(const absl::CommandLineFlag& flag, const std::string& error) {
  if (flag.IsOfType<absl::Duration>()) {
    return "want a duration such as 2s, 500ms or 1m30s";
  }
  if (flag.IsOfType<int>() || flag.IsOfType<int64_t>()) {
    return "want an integer";
  }
  if (flag.IsOfType<bool>()) return "want true or false";
  return error;
}

// One argument that starts with '-', split into its parts.
struct Arg {
  std::string typed;  // the name as typed, with its dashes ("--tls-cert")
  std::string name;   // the absl name ("tls_cert")
  std::string value;
  bool has_value = false;
  bool negated = false;  // --noflag
};

Arg Split(const FlagSet& set, const std::string& a) {
  Arg arg;
  const size_t eq = a.find('=');
  arg.typed = a.substr(0, eq);
  if (eq != std::string::npos) {
    arg.value = a.substr(eq + 1);
    arg.has_value = true;
  }
  const std::string bare = arg.typed.substr(a[1] == '-' ? 2 : 1);
  arg.name = absl::StrReplaceAll(bare, {{"-", "_"}});
  for (const auto& [alias, name] : set.aliases) {
    if (bare == alias) arg.name = name;
  }
  if (!Takes(set, arg.name) && absl::StartsWith(arg.name, "no") &&
      Takes(set, arg.name.substr(2))) {
    arg.name = arg.name.substr(2);
    arg.negated = true;
  }
  return arg;
}

absl::Status Unknown(const FlagSet& set, const Arg& arg) {
  std::string msg = absl::StrCat("unknown flag ", arg.typed);
  if (!set.program.empty()) absl::StrAppend(&msg, " for ", set.program);
  if (!set.elsewhere.empty() &&
      absl::FindCommandLineFlag(arg.name) != nullptr) {
    absl::StrAppend(&msg, " (", set.elsewhere, ")");
  }
  return absl::InvalidArgumentError(msg);
}

// Sets the flag of args[*i] (and of args[*i + 1], its value, if separate).
absl::Status SetOne(const FlagSet& set, const std::vector<std::string>& args,
                    size_t* i) {
  Arg arg = Split(set, args[*i]);
  if (!Takes(set, arg.name)) return Unknown(set, arg);
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(arg.name);
  if (flag == nullptr) {
    return absl::InternalError(absl::StrCat(arg.name, " is not an absl flag"));
  }
  const std::string spelling = Spelling(arg.name);
  if (flag->IsOfType<bool>()) {
    if (arg.negated && arg.has_value) {
      return absl::InvalidArgumentError(absl::StrCat(
          args[*i], ": use ", spelling, "=false or --no", arg.name));
    }
    if (!arg.has_value) arg.value = arg.negated ? "false" : "true";
  } else if (arg.negated) {
    return absl::InvalidArgumentError(
        absl::StrCat(args[*i], ": ", spelling, " is not a true/false flag"));
  } else if (!arg.has_value) {
    if (*i + 1 >= args.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(spelling, " needs a value"));
    }
    arg.value = args[++*i];
  }
  std::string error;
  if (!flag->ParseFrom(arg.value, &error)) {
    return absl::InvalidArgumentError(absl::StrCat("bad value \"", arg.value,
                                                   "\" for ", spelling, ": ",
                                                   Want(*flag, error)));
  }
  return absl::OkStatus();
}

}  // namespace

std::string Spelling(absl::string_view name) {
  return absl::StrCat("--", absl::StrReplaceAll(name, {{"_", "-"}}));
}

absl::StatusOr<Parsed> Parse(const FlagSet& set,
                             const std::vector<std::string>& args) {
  Parsed parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--" && set.takes_command) {
      parsed.dashdash = true;
      parsed.command.assign(args.begin() + static_cast<long>(i) + 1,
                            args.end());
      break;
    }
    if (a.size() < 2 || a[0] != '-' || a == "--") {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", a, "\"", set.positional_hint));
    }
    const std::string bare = a.substr(0, a.find('='));
    if (IsHelp(bare.substr(bare[1] == '-' ? 2 : 1))) {
      parsed.help = true;
      return parsed;
    }
    if (absl::Status s = SetOne(set, args, &i); !s.ok()) return s;
  }
  return parsed;
}

int ParseMain(const FlagSet& set, int argc, char** argv,
              absl::string_view about, int help_code, int error_code) {
  auto parsed = Parse(set, std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed.ok()) {
    fprintf(stderr, "%s (see --help)\n",
            std::string(parsed.status().message()).c_str());
    return error_code;
  }
  if (parsed->help) {
    fprintf(stdout, "%s\n\n%s", std::string(about).c_str(), Help(set).c_str());
    return help_code;
  }
  return -1;
}

void ResetToDefaults(const FlagSet& set) {
  for (const std::string& n : set.names) {
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(n);
    std::string error;
    if (flag != nullptr) flag->ParseFrom(flag->DefaultValue(), &error);
  }
}

std::string Help(const FlagSet& set) {
  std::string out = "Flags (--name=value or --name value):\n";
  for (const std::string& n : set.names) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(n);
    if (flag == nullptr) continue;
    absl::StrAppend(&out, "  ", Spelling(n));
    for (const auto& [alias, name] : set.aliases) {
      if (name == n) absl::StrAppend(&out, ", -", alias);
    }
    absl::StrAppend(&out, " (default \"", flag->DefaultValue(), "\")\n      ",
                    flag->Help(), "\n");
  }
  return out;
}

}  // namespace mcl::flags
