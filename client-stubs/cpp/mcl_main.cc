// mcl: the command-line client of the mcl sidecar (README.md, "The mcl
// command"; mcl --help).
#include <cstdio>
#include <string>
#include <vector>

#include "client-stubs/cpp/cli_flags.h"
#include "client-stubs/cpp/query_commands.h"
#include "client-stubs/cpp/run_command.h"
#include "common/stop_signals.h"

int main(int argc, char** argv) {
  // Before any thread starts (gRPC's included): SIGTERM/SIGINT are taken by
  // a sigwait thread, never by a handler.
  mcl::BlockStopSignals();
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" ||
      args[0] == "-h") {
    const std::string sub = args.size() > 1 && args[0] == "help" ? args[1] : "";
    std::printf(
        "%s", mcl::cli::Usage(mcl::cli::IsSubcommand(sub) ? sub : "").c_str());
    return args.empty() ? mcl::cli::kUsage : mcl::cli::kOk;
  }
  const std::string sub = args[0];
  args.erase(args.begin());
  auto flags = mcl::cli::ParseFlags(sub, args);
  if (!flags.ok()) {
    std::fprintf(stderr, "mcl: %s\n",
                 std::string(flags.status().message()).c_str());
    return mcl::cli::kUsage;
  }
  if (flags->help) {
    std::printf("%s", mcl::cli::Usage(sub).c_str());
    return mcl::cli::kOk;
  }
  if (sub == "run") return mcl::cli::RunMain(*flags);
  if (sub == "observe") return mcl::cli::ObserveMain(*flags);
  if (sub == "leader") return mcl::cli::LeaderMain(*flags);
  if (sub == "resign") return mcl::cli::ResignMain(*flags);
  return mcl::cli::StatusMain(*flags);
}
