// The `mcl` command's flags and exit codes (README.md, "The mcl command").
// Flags are absl flags, parsed per subcommand by common/flags.h rather than by
// absl::ParseCommandLine, so that an unknown flag, a flag another subcommand
// owns or a malformed value gets mcl's message and exit code 2 instead of
// abseil's generic exit.
#ifndef MCL_CLIENT_STUBS_CPP_CLI_FLAGS_H_
#define MCL_CLIENT_STUBS_CPP_CLI_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mcl::cli {

// Exit codes shared by every subcommand (`mcl run` also exits with CMD's
// status when CMD exits by itself; see README.md).
enum ExitCode {
  kOk = 0,
  kNoLeader = 1,     // `mcl leader`: nobody leads the lock now
  kUsage = 2,        // malformed input: says what to fix
  kUnreachable = 3,  // the sidecar (or its /metrics) did not answer
  kRefused = 4,      // the sidecar refused, or the campaign failed for good
  // 5 was `mcl run`'s "resigned from outside": a resign is now a step-down
  // (mcl run campaigns again), as in every mcl client library.
  kCannotExec = 126,  // `mcl run`: CMD is not executable
  kNotFound = 127,    // `mcl run`: CMD was not found
};

struct Flags {
  std::string lock, lock_namespace, identity;
  absl::Duration grace;
  bool restart = false;
  absl::Duration lease_duration;  // zero: the sidecar's default
  absl::Duration connect_timeout;
  std::string output;  // "text" or "json"
  absl::Duration timeout;
  std::string metrics_addr;
  bool help = false;
  // Arguments after "--" (`mcl run`), and whether "--" was there.
  std::vector<std::string> command;
  bool dashdash = false;
};

// Parses `args` (what follows the subcommand) for `subcommand`, accepting only
// its flags: --name=value, --name value, --name / --noname for booleans, -o
// for --output; '-' and '_' are the same in names. INVALID_ARGUMENT says what
// to fix. Checks the values too (lock name, namespace, durations, -o).
absl::StatusOr<Flags> ParseFlags(const std::string& subcommand,
                                 const std::vector<std::string>& args);

// The usage text of `subcommand` ("" for the overview), with its flags.
std::string Usage(const std::string& subcommand);

// Whether `subcommand` exists.
bool IsSubcommand(const std::string& subcommand);

}  // namespace mcl::cli

#endif  // MCL_CLIENT_STUBS_CPP_CLI_FLAGS_H_
