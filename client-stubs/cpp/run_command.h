// `mcl run`: CMD runs only while this candidate leads (README.md, "The mcl
// command"). Built on the library: the LeaderFn starts CMD with the grant in
// its environment and, when the library cancels the term (LOST, stream end,
// validity bound, Stop), signals CMD's process group: SIGTERM, then SIGKILL
// after --grace, then waits. Threads: main waits for the campaign; one thread
// takes SIGTERM/SIGINT (sigwait); the library's threads; CMD's waiter thread.
#ifndef MCL_CLIENT_STUBS_CPP_RUN_COMMAND_H_
#define MCL_CLIENT_STUBS_CPP_RUN_COMMAND_H_

#include "client-stubs/cpp/cli_flags.h"

namespace mcl::cli {

// Runs `mcl run` with parsed flags; returns the exit code. Needs
// BlockStopSignals() first (main does it before any thread starts).
int RunMain(const Flags& flags);

}  // namespace mcl::cli

#endif  // MCL_CLIENT_STUBS_CPP_RUN_COMMAND_H_
