// The shared main of fern's benchmark binaries (see ratio_report.h).
#include "ratio_report.h"

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace fern::bench {
namespace {

// Prints as ConsoleReporter does and keeps each row's ns per item for the
// summary: the median aggregate when repetitions produce one, else the mean
// of the repetitions.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  using ConsoleReporter::ConsoleReporter;

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) record(run);
    ConsoleReporter::ReportRuns(runs);
  }

  void print_summary(std::ostream& out, Reference (*reference)(const std::string&)) const;

 private:
  struct Row {
    std::string name, subject, impl;
    double ns_sum = 0, ns_min = 0, ns_max = 0;
    int runs = 0;
    double median = -1;
    double mean_rate = -1, stddev_rate = -1;  // of items per second, across repetitions
    double ns() const { return median >= 0 ? median : ns_sum / runs; }
    // Spread across repetitions as a percentage of the mean; -1 when unknown.
    double spread() const {
      if (mean_rate > 0 && stddev_rate >= 0) return 100 * stddev_rate / mean_rate;
      if (runs > 1) return 100 * (ns_max - ns_min) / ns();
      return -1;
    }
  };

  void record(const Run& run);
  const Row* find(const std::string& subject, const std::string& impl) const {
    for (const Row& r : rows_)
      if (r.subject == subject && r.impl == impl) return &r;
    return nullptr;
  }

  std::vector<Row> rows_;
};

void SummaryReporter::record(const Run& run) {
  if (run.error_occurred) return;
  bool aggregate = run.run_type == Run::RT_Aggregate;
  const std::string kind = aggregate ? run.aggregate_name : "";
  if (aggregate && kind != "median" && kind != "mean" && kind != "stddev") return;
  auto rate = run.counters.find("items_per_second");
  if (rate == run.counters.end() || (kind != "stddev" && rate->second.value <= 0)) return;
  double ns = kind == "stddev" ? 0 : 1e9 / rate->second.value;

  std::string name = run.run_name.str();
  Row* row = nullptr;
  for (Row& r : rows_)
    if (r.name == name) row = &r;
  if (!row) {
    // BM_<Subject>_<impl>[/args]: subjects have no underscore, impls may.
    std::string fn = run.run_name.function_name;
    if (fn.rfind("BM_", 0) == 0) fn.erase(0, 3);
    auto cut = fn.find('_');
    Row r;
    r.name = name;
    r.subject = fn.substr(0, cut);
    r.impl = cut == std::string::npos ? std::string("?") : fn.substr(cut + 1);
    if (!run.run_name.args.empty()) r.impl += "/" + run.run_name.args;
    rows_.push_back(r);
    row = &rows_.back();
  }
  if (kind == "median") {
    row->median = ns;
  } else if (kind == "mean") {
    row->mean_rate = rate->second.value;
  } else if (kind == "stddev") {
    row->stddev_rate = rate->second.value;
  } else {
    row->ns_min = row->runs ? std::min(row->ns_min, ns) : ns;
    row->ns_max = row->runs ? std::max(row->ns_max, ns) : ns;
    row->ns_sum += ns;
    ++row->runs;
  }
}

void SummaryReporter::print_summary(std::ostream& out, Reference (*reference)(const std::string&)) const {
  if (rows_.empty()) return;
  out << "\nns per item and ratio to the subject's reference row\n"
         "  ns per item: CPU time per item, from items_per_second (the table above\n"
         "  is per iteration, wall and CPU time; an iteration may hold several items,\n"
         "  e.g. a Switch round trip is two switches). One item is one switch, yield,\n"
         "  task, timer or message. The median of the repetitions when there are\n"
         "  several (spread: their standard deviation as % of the mean), else the\n"
         "  mean of the runs. Ratio: to the reference row of the same run.\n"
         "  A \"Library was built as DEBUG\" warning above is about the Google\n"
         "  Benchmark library (Debian's package is built so), not fern, which this\n"
         "  binary uses as built with CMAKE_BUILD_TYPE=" FERN_BENCH_BUILD_TYPE ".\n";
  char line[200];
  for (const Row& r : rows_) {
    Reference ref = reference(r.subject);
    std::string args = r.impl.find('/') == std::string::npos ? "" : r.impl.substr(r.impl.find('/'));
    const Row* base = find(ref.subject, ref.impl + args);
    if (!base) base = find(ref.subject, ref.impl);
    std::string ratio;
    if (base) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%6.2fx ", r.ns() / base->ns());
      ratio = buf + base->impl + (ref.subject != r.subject ? " (" + ref.subject + ")" : "");
    } else {
      ratio = "no " + ref.impl + " row in this run";
    }
    char spread[32] = "";
    if (r.spread() >= 0) std::snprintf(spread, sizeof spread, " +-%.1f%%", r.spread());
    std::snprintf(line, sizeof line, "%-17s %-20s %10.2f ns%-8s  %s\n", r.subject.c_str(), r.impl.c_str(),
                  r.ns(), spread, ratio.c_str());
    out << line;
  }
}

// Google Benchmark's flag syntax: -name=value or --name=value, a bare -name
// for true, the environment variable NAME (upper case) as the default.
std::string flag(int argc, char** argv, const std::string& name, std::string value) {
  std::string env = name;
  for (char& c : env) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (const char* e = std::getenv(env.c_str())) value = e;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::size_t dashes = arg.rfind("--", 0) == 0 ? 2 : arg.rfind('-', 0) == 0 ? 1 : 0;
    if (dashes == 0) continue;
    arg.erase(0, dashes);
    if (arg == name) value = "true";
    else if (arg.rfind(name + "=", 0) == 0) value = arg.substr(name.size() + 1);
  }
  return value;
}

bool truthy(std::string v) {
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return !(v == "0" || v == "f" || v == "false" || v == "n" || v == "no" || v == "off");
}

// The console options Google Benchmark would pick from the same flags.
benchmark::ConsoleReporter::OutputOptions console_options(int argc, char** argv) {
  int opts = benchmark::ConsoleReporter::OO_None;
  std::string color = flag(argc, argv, "benchmark_color", "auto");
  const char* term = std::getenv("TERM");
  bool auto_color = isatty(STDOUT_FILENO) && term && std::strcmp(term, "dumb") != 0;
  if (color == "auto" ? auto_color : truthy(color)) opts |= benchmark::ConsoleReporter::OO_Color;
  if (truthy(flag(argc, argv, "benchmark_counters_tabular", "false")))
    opts |= benchmark::ConsoleReporter::OO_Tabular;
  return static_cast<benchmark::ConsoleReporter::OutputOptions>(opts);
}

}  // namespace

int run_with_ratios(int argc, char** argv, Reference (*reference)(const std::string& subject)) {
  // Read before Initialize, which removes the flags it knows from argv.
  bool console = flag(argc, argv, "benchmark_format", "console") == "console";
  auto options = console_options(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!console) {
    // JSON or CSV stays machine-readable: no summary.
    benchmark::RunSpecifiedBenchmarks();
  } else {
    SummaryReporter reporter(options);
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.print_summary(std::cout, reference);
  }
  benchmark::Shutdown();
  return 0;
}

}  // namespace fern::bench
