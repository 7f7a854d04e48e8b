// The framing of a watch stream (common/kube/watch_stream.h): bytes as an
// apiserver (or whatever stands in its way) sends them, in pieces that do not
// align with events. Properties:
//  * no crash, whatever the bytes;
//  * the frames and the final error state do not depend on how the bytes were
//    cut: feeding them whole or in the pieces the input chooses gives the same
//    result (HTTP chunking must not change what the informer sees);
//  * every frame is one top-level JSON-object-like span: it starts with '{'
//    and ends with '}' or ']';
//  * DecodeWatchEvent either decodes a frame or says what is wrong.
//
// Input: the first byte seeds the piece sizes, the rest is the stream.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/fuzz/check.h"
#include "common/kube/watch_stream.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using mcl::kube::DecodeWatchEvent;
  using mcl::kube::WatchFramer;
  if (size == 0) return 0;
  uint32_t seed = data[0];
  const absl::string_view stream(reinterpret_cast<const char*>(data + 1),
                                 size - 1);
  // A small event limit, so over-long events are reached too.
  constexpr size_t kMax = 4096;

  WatchFramer whole(kMax);
  std::vector<std::string> whole_frames;
  const absl::Status whole_status = whole.Feed(stream, &whole_frames);

  WatchFramer cut(kMax);
  std::vector<std::string> cut_frames;
  absl::Status cut_status;
  size_t at = 0;
  while (at < stream.size() && cut_status.ok()) {
    seed = seed * 1103515245u + 12345u;
    const size_t n = 1 + (seed >> 16) % 97;
    cut_status = cut.Feed(stream.substr(at, n), &cut_frames);
    at += n;
  }
  FUZZ_CHECK(whole_status.ok() == cut_status.ok(), "whole: %s / cut: %s",
             whole_status.ToString().c_str(), cut_status.ToString().c_str());
  FUZZ_CHECK(whole_frames == cut_frames, "%zu frames whole, %zu cut",
             whole_frames.size(), cut_frames.size());
  if (whole_status.ok()) {
    FUZZ_CHECK(whole.pending() == cut.pending(), "pending %zu vs %zu",
               whole.pending(), cut.pending());
    FUZZ_CHECK(whole.pending() <= kMax, "pending %zu", whole.pending());
  }
  for (const std::string& f : whole_frames) {
    FUZZ_CHECK(
        !f.empty() && f.front() == '{' && (f.back() == '}' || f.back() == ']'),
        "frame: %s", f.c_str());
    FUZZ_CHECK(f.size() <= kMax, "frame of %zu bytes", f.size());
    auto ev = DecodeWatchEvent(f);
    if (!ev.ok()) {
      FUZZ_CHECK(!ev.status().message().empty(), "an error without a message");
    }
  }
  return 0;
}
