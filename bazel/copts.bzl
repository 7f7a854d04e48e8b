"""Compiler options for mcl's own code: C++17, warnings as errors."""

MCL_COPTS = [
    "-std=c++17",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
]
