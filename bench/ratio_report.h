#pragma once
// A main() for fern's Google Benchmark binaries: runs the benchmarks with
// the standard flags, and with the console format appends a table of each
// row's ns per item and its ratio to its subject's reference row.
//
// Rows are BM_<Subject>_<impl>[/args]; subjects have no underscore. One item
// is one switch, yield, task, timer or message, so rows of a subject divide.
#include <string>

namespace fern::bench {

struct Reference {
  std::string subject;  // usually the row's own subject
  std::string impl;     // e.g. "boost_fiber", "libev"; args are matched too
};

// reference(subject) names the row every row of `subject` is divided by.
int run_with_ratios(int argc, char** argv, Reference (*reference)(const std::string& subject));

}  // namespace fern::bench
