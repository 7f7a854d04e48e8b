// `mcl observe`, `mcl leader`, `mcl resign`, `mcl status`: one call (or one
// stream) to the sidecar each; errors as exit codes (cli_flags.h) with a
// message on stderr that says what to fix. Each returns the exit code.
#ifndef MCL_CLIENT_STUBS_CPP_QUERY_COMMANDS_H_
#define MCL_CLIENT_STUBS_CPP_QUERY_COMMANDS_H_

#include "client-stubs/cpp/cli_flags.h"

namespace mcl::cli {

// Until SIGTERM/SIGINT (exit 0); reconnects when the stream breaks.
int ObserveMain(const Flags& flags);
int LeaderMain(const Flags& flags);
int ResignMain(const Flags& flags);
int StatusMain(const Flags& flags);

}  // namespace mcl::cli

#endif  // MCL_CLIENT_STUBS_CPP_QUERY_COMMANDS_H_
