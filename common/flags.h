// The one command-line parser of mcl's programs (mcl-controller, mcl-injector,
// mcl-uninstall, the `mcl` command's subcommands). Their flags are absl flags,
// but users spell them with dashes (--session-ttl) and absl names cannot
// contain '-'; absl::ParseCommandLine also exits by itself with its own
// messages. Parse() maps each argument onto the absl flag of a FlagSet and
// returns what is wrong as INVALID_ARGUMENT, saying what to fix, so each
// program keeps its own messages' frame and exit codes.
//
// Accepted: --name=value, --name value, -name (one dash), '-' or '_' inside
// names, --flag / --noflag / --flag=false for booleans, one-letter aliases
// (-o), --help / -h / --helpfull, and "--" ending the flags when the program
// takes a command. Anything else is refused: an unknown flag, a missing
// value, a value that does not parse, a positional argument.
//
// Single-threaded: call before any thread reads the flags.
#ifndef MCL_COMMON_FLAGS_H_
#define MCL_COMMON_FLAGS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mcl::flags {

// The flags one program (or one subcommand) accepts.
struct FlagSet {
  // Named in messages: "unknown flag --x for mcl run". Empty: not named.
  std::string program;
  // absl names ('_'), in --help order; each must be an ABSL_FLAG.
  std::vector<std::string> names;
  // One-letter aliases: {"o", "output"} makes -o mean --output.
  std::vector<std::pair<std::string, std::string>> aliases;
  // Added to "unknown flag" when absl knows the flag but this set does not
  // take it, e.g. "another subcommand takes it". Empty: nothing added.
  std::string elsewhere;
  // Whether "--" ends the flags (what follows is Parsed::command). Otherwise
  // "--" is refused like any other positional argument.
  bool takes_command = false;
  // Added to "unexpected argument \"x\"" (e.g. "; put the command after").
  std::string positional_hint;
};

struct Parsed {
  bool help = false;      // --help and friends; parsing stopped there
  bool dashdash = false;  // "--" was given (takes_command only)
  std::vector<std::string> command;  // the arguments after "--"
};

// Sets the flags of `set` from `args` (argv without the program name).
// INVALID_ARGUMENT names the argument and says what to fix.
absl::StatusOr<Parsed> Parse(const FlagSet& set,
                             const std::vector<std::string>& args);

// For a main(): parses argv[1..]. Returns -1 to go on, or the exit code:
// `help_code` after printing `about`, a blank line and Help(set) to stdout
// (on --help), `error_code` after printing the error and " (see --help)" to
// stderr.
int ParseMain(const FlagSet& set, int argc, char** argv,
              absl::string_view about, int help_code, int error_code);

// Sets every flag of `set` back to its default (tests parse several times).
void ResetToDefaults(const FlagSet& set);

// "--session-ttl" for "session_ttl".
std::string Spelling(absl::string_view name);

// A "Flags:" block: each flag's spelling, alias, default and help text.
std::string Help(const FlagSet& set);

}  // namespace mcl::flags

#endif  // MCL_COMMON_FLAGS_H_
