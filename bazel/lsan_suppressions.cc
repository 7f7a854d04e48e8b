// Leaks LeakSanitizer must not report under `--config=asan`: allocations made
// inside system libraries we do not build (and cannot fix), kept for the life
// of the process by design. Linked into every test; inert without ASan.
// The name is LeakSanitizer's hook, reserved on purpose.
extern "C" const char*
__lsan_default_suppressions() {  // NOLINT(bugprone-reserved-identifier)
  // c-ares (gRPC's DNS resolver) keeps an allocation of its initialisation
  // until exit. Linked statically, it is matched by function, not by library
  // file; Debian's archive has no frame pointers, so the report's stack shows
  // only c-ares' own strdup.
  return "leak:ares_library_init\nleak:ares_strdup\n";
}
