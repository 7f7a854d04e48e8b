#include "client-stubs/cpp/cli_flags.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client-stubs/cpp/leadership.h"
#include "common/flags.h"

ABSL_FLAG(std::string, lock, "", "name of the lock (a DNS-1123 subdomain)");
ABSL_FLAG(std::string, namespace, "",
          "namespace of the lock (default: the sidecar's namespace)");
ABSL_FLAG(std::string, identity, "",
          "candidate identity (default: the sidecar's, pod name + uid)");
ABSL_FLAG(absl::Duration, grace, absl::Seconds(5),
          "after SIGTERM to CMD's process group, how long until SIGKILL");
ABSL_FLAG(bool, restart, false,
          "restart CMD when it exits by itself while leading, instead of "
          "resigning");
ABSL_FLAG(absl::Duration, lease_duration, absl::ZeroDuration(),
          "the campaign's lease duration, 2s..3600s in whole seconds "
          "(default: the sidecar's)");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(30),
          "give up (exit 3) if the sidecar gives no first event within this "
          "(afterwards mcl run reconnects forever)");
ABSL_FLAG(std::string, output, "text", "output format: text or json (-o)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10),
          "bound of each call to the sidecar");
ABSL_FLAG(std::string, metrics_addr, "",
          "HOST:PORT of the sidecar's /metrics (default: "
          "$MCL_SIDECAR_METRICS_ADDR, else 127.0.0.1:7401)");

namespace mcl::cli {
namespace {

const std::map<std::string, std::vector<std::string>>& Subcommands() {
  static const auto* m = new std::map<std::string, std::vector<std::string>>{
      {"run",
       {"lock", "namespace", "identity", "grace", "restart", "lease_duration",
        "connect_timeout"}},
      {"observe", {"lock", "namespace", "output", "timeout"}},
      {"leader", {"lock", "namespace", "output", "timeout"}},
      {"status", {"output", "timeout", "metrics_addr"}},
      {"resign", {"lock", "namespace", "identity", "timeout"}},
  };
  return *m;
}

absl::Status Usage(const std::string& sub, const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat(what, " (see: mcl ", sub, " --help)"));
}

// The flags `sub` takes; -o is --output (named even where --output is not
// taken, so that `mcl run -o` says another subcommand takes it).
flags::FlagSet FlagsOf(const std::string& sub) {
  flags::FlagSet set;
  set.program = absl::StrCat("mcl ", sub);
  set.names = Subcommands().at(sub);
  set.aliases = {{"o", "output"}};
  set.elsewhere = "another subcommand takes it";
  set.takes_command = true;  // "mcl observe -- x" gets its own message
  if (sub == "run") set.positional_hint = "; put the command after \"--\"";
  return set;
}

absl::Status CheckValues(const std::string& sub, const Flags& f) {
  const auto& allowed = Subcommands().at(sub);
  auto takes = [&](const char* n) {
    return std::find(allowed.begin(), allowed.end(), n) != allowed.end();
  };
  if (takes("lock")) {
    if (f.lock.empty()) return Usage(sub, "--lock is required");
    if (absl::Status s = client::ValidateLockName(f.lock); !s.ok()) {
      return Usage(sub, absl::StrCat("--lock: ", s.message()));
    }
    if (absl::Status s = client::ValidateNamespace(f.lock_namespace); !s.ok()) {
      return Usage(sub, absl::StrCat("--namespace: ", s.message()));
    }
  }
  if (f.grace < absl::ZeroDuration()) {
    return Usage(sub, "--grace must not be negative");
  }
  if (f.lease_duration != absl::ZeroDuration() &&
      (f.lease_duration < absl::Seconds(2) ||
       f.lease_duration > absl::Seconds(3600) ||
       f.lease_duration !=
           absl::Seconds(absl::ToInt64Seconds(f.lease_duration)))) {
    return Usage(sub, absl::StrCat("--lease-duration=",
                                   absl::FormatDuration(f.lease_duration),
                                   ": use whole seconds in 2s..3600s"));
  }
  if (f.timeout <= absl::ZeroDuration() ||
      f.connect_timeout <= absl::ZeroDuration()) {
    return Usage(sub, "timeouts must be positive");
  }
  if (f.output != "text" && f.output != "json") {
    return Usage(sub, absl::StrCat("-o ", f.output, ": use text or json"));
  }
  if (sub == "run") {
    if (!f.dashdash) {
      return Usage(sub,
                   "missing \"--\" before the command: mcl run --lock NAME -- "
                   "CMD [ARGS...]");
    }
    if (f.command.empty()) return Usage(sub, "no command after \"--\"");
  } else if (f.dashdash) {
    return Usage(sub, absl::StrCat("mcl ", sub, " takes no command"));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsSubcommand(const std::string& s) { return Subcommands().count(s) > 0; }

absl::StatusOr<Flags> ParseFlags(const std::string& sub,
                                 const std::vector<std::string>& args) {
  if (!IsSubcommand(sub)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown command \"", sub,
        "\"; use run, observe, leader, status or resign (see: mcl --help)"));
  }
  // Start from the defaults: one process runs one subcommand, but tests parse
  // several in a row.
  const flags::FlagSet set = FlagsOf(sub);
  flags::ResetToDefaults(set);
  auto parsed = flags::Parse(set, args);
  if (!parsed.ok()) return Usage(sub, std::string(parsed.status().message()));
  Flags f;
  if (parsed->help) {
    f.help = true;
    return f;
  }
  f.dashdash = parsed->dashdash;
  f.command = std::move(parsed->command);
  f.lock = absl::GetFlag(FLAGS_lock);
  f.lock_namespace = absl::GetFlag(FLAGS_namespace);
  f.identity = absl::GetFlag(FLAGS_identity);
  f.grace = absl::GetFlag(FLAGS_grace);
  f.restart = absl::GetFlag(FLAGS_restart);
  f.lease_duration = absl::GetFlag(FLAGS_lease_duration);
  f.connect_timeout = absl::GetFlag(FLAGS_connect_timeout);
  f.output = absl::GetFlag(FLAGS_output);
  f.timeout = absl::GetFlag(FLAGS_timeout);
  f.metrics_addr = absl::GetFlag(FLAGS_metrics_addr);
  if (absl::Status s = CheckValues(sub, f); !s.ok()) return s;
  return f;
}

std::string Usage(const std::string& sub) {
  static const auto* text = new std::map<std::string, std::string>{
      {"",
       "mcl: multi-cluster leader election from the shell, through the mcl "
       "sidecar.\n\n"
       "  mcl run --lock NAME [flags] -- CMD [ARGS...]  run CMD only while "
       "leading\n"
       "  mcl observe --lock NAME [-o json]             a line per leader "
       "change\n"
       "  mcl leader --lock NAME [-o json]              the current leader\n"
       "  mcl status [-o json]                          the locks this "
       "sidecar serves\n"
       "  mcl resign --lock NAME [--identity ID]        resign this "
       "sidecar's campaigns\n\n"
       "The sidecar: $MCL_SIDECAR_ADDR (HOST:PORT or unix:///path; default "
       "127.0.0.1:7400).\n"
       "Exit codes: 0 ok, 1 no leader (mcl leader), 2 bad input, 3 sidecar "
       "unreachable, 4 refused by the sidecar;\nmcl run also exits with CMD's "
       "status when CMD "
       "exits by itself, 126/127 when CMD cannot be run.\n"
       "mcl COMMAND --help for a command's flags.\n"},
      {"run",
       "mcl run --lock NAME [--namespace NS] [--identity ID] [--grace DUR] "
       "[--restart] [--lease-duration DUR] [--connect-timeout DUR] -- CMD "
       "[ARGS...]\n\n"
       "Campaigns for the lock and runs CMD, in its own process group, only "
       "while this candidate leads.\n"
       "CMD's environment: MCL_FENCING_TOKEN, MCL_LOCK, MCL_NAMESPACE (when "
       "given), MCL_LEADER_IDENTITY,\n"
       "MCL_VALID_UNTIL_MONOTONIC_NS (the bound at start, CLOCK_MONOTONIC) "
       "and MCL_VALID_UNTIL (the same as an RFC 3339 wall-clock estimate).\n"
       "At LOST, at the end of the sidecar's stream, or when the validity "
       "bound passes without a renewal: SIGTERM to CMD's process group,\n"
       "SIGKILL after --grace, wait. A renewal does not restart CMD; the "
       "next grant starts it again with its token.\n"
       "When CMD exits by itself: mcl resigns and exits with CMD's status "
       "(--restart: runs it again while leading).\n"
       "SIGTERM/SIGINT: stops CMD the same way, then resigns and exits 0 (a "
       "second signal skips the grace).\n"},
      {"observe",
       "mcl observe --lock NAME [--namespace NS] [-o text|json] [--timeout "
       "DUR]\n\n"
       "Prints the lock's leader as this cluster sees it, a line per change "
       "(text: TIME STATE leader=ID cluster=C token=N;\njson: the "
       "LeadershipEvent in proto3 JSON), until SIGINT/SIGTERM. Reconnects "
       "when the sidecar restarts.\n"},
      {"leader",
       "mcl leader --lock NAME [--namespace NS] [-o text|json] [--timeout "
       "DUR]\n\n"
       "Prints the current leader (identity, cluster, fencing token, acquire "
       "time); exit 1 when nobody leads.\n"},
      {"status",
       "mcl status [-o text|json] [--metrics-addr HOST:PORT] [--timeout "
       "DUR]\n\n"
       "Lists the locks this sidecar has served since it started (campaigns "
       "and observers), whether a campaign here leads each,\n"
       "and its current leader. Reads the sidecar's /metrics ($MCL_SIDECAR_"
       "METRICS_ADDR, default 127.0.0.1:7401, the Helm chart's port):\n"
       "the sidecar has no RPC that lists campaigns.\n"},
      {"resign",
       "mcl resign --lock NAME [--namespace NS] [--identity ID] [--timeout "
       "DUR]\n\n"
       "Resigns the campaigns for the lock on this sidecar (only ID's with "
       "--identity; without it, every campaign\n"
       "for the lock on this sidecar). An `mcl run` whose campaign is "
       "resigned stops CMD and campaigns again\n(a step-down; stop mcl run "
       "itself to end its candidacy).\n"},
  };
  auto it = text->find(sub);
  if (it == text->end()) return text->at("");
  std::string out = it->second;
  if (!sub.empty()) absl::StrAppend(&out, "\n", flags::Help(FlagsOf(sub)));
  return out;
}

}  // namespace mcl::cli
