// The patch flags and the list of what is interposed.
#include "fern/hooks/hooks.h"

#include <cstdlib>
#include <cstring>

#include "fern/hooks/detail.h"

namespace fern::hooks {
namespace {

constexpr HookedFunction kFunctions[] = {
#define FERN_LIST_FN(name, group) {#name, group, false},
    FERN_HOOKED_FUNCTIONS(FERN_LIST_FN)
#undef FERN_LIST_FN
};

// FERN_HOOKS=all (or a comma list of socket, select, time, dns) patches at
// load time, for a program started with the hooks preloaded.
[[gnu::constructor]] void patch_from_environment() {
  const char* spec = std::getenv("FERN_HOOKS");
  if (spec == nullptr) return;
  unsigned groups = 0;
  if (std::strstr(spec, "all")) groups |= kAll;
  if (std::strstr(spec, "socket")) groups |= kSocket | kDns;
  if (std::strstr(spec, "select")) groups |= kSelect;
  if (std::strstr(spec, "time")) groups |= kTime;
  if (std::strstr(spec, "dns")) groups |= kDns;
  patch(groups);
}

}  // namespace

void patch(unsigned groups) noexcept { detail::g_patched.fetch_or(groups & kAll, std::memory_order_relaxed); }
void unpatch(unsigned groups) noexcept { detail::g_patched.fetch_and(~groups, std::memory_order_relaxed); }
unsigned patched_groups() noexcept { return detail::g_patched.load(std::memory_order_relaxed); }

std::vector<HookedFunction> patched_functions() {
  unsigned now = patched_groups();
  std::vector<HookedFunction> out;
  for (HookedFunction f : kFunctions) {
    f.patched = f.group != 0 && (now & f.group) != 0;
    out.push_back(f);
  }
  return out;
}

bool is_patched(const std::string& name) {
  for (const HookedFunction& f : patched_functions())
    if (name == f.name) return f.patched;
  return false;
}

}  // namespace fern::hooks
