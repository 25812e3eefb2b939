// dump_greenlets: the registry of core/greenlet.cpp, formatted.
#include "fern/core/debug.h"

#include <cinttypes>
#include <cstring>

#include "fern/core/hub.h"
#include "fern/core/task.h"

namespace fern {
namespace {

const char* state_name(const detail::GreenletView& v) {
  switch (v.state) {
    case detail::GreenletView::kUnstarted: return "unstarted";
    case detail::GreenletView::kRunning: return "running";
    case detail::GreenletView::kDead: return "dead";
    case detail::GreenletView::kSuspended: break;
  }
  return v.head->park_what ? "parked" : "suspended";
}

struct Listing {
  std::FILE* out;
  unsigned long hub_id;
  bool has_hub;
};

void print_one(const detail::GreenletView& v, void* ctx) {
  auto& l = *static_cast<Listing*>(ctx);
  std::fprintf(l.out, "  #%-4lu %-9s ", v.id, state_name(v));
  if (v.is_main) std::fputs("parent -   ", l.out);
  else std::fprintf(l.out, "parent #%-3lu", v.parent_id);
  if (v.stack_base) std::fprintf(l.out, " stack %zu/%zu", v.stack_used, v.stack_size);
  else std::fputs(" stack -", l.out);
  if (v.is_main) std::fputs("  main", l.out);
  else if (l.has_hub && v.id == l.hub_id) std::fputs("  hub", l.out);
  else if (auto* task = static_cast<const TaskBase*>(v.head->task))
    std::fprintf(l.out, "  %s", task->describe().c_str());
  if (v.head->park_what && v.state == detail::GreenletView::kSuspended) {
    const char* what = v.head->park_what;
    if (std::strncmp(what, "fd ", 3) == 0)
      std::fprintf(l.out, "  %s fd %" PRIdPTR, what, reinterpret_cast<std::intptr_t>(v.head->park_object));
    else if (v.head->park_object)
      std::fprintf(l.out, "  %s %p", what, v.head->park_object);
    else
      std::fprintf(l.out, "  %s", what);
  }
  std::fputc('\n', l.out);
}

}  // namespace

void dump_greenlets(std::FILE* out) {
  Hub* hub = Hub::current_if_exists();
  Listing l{out, hub ? hub->greenlet().id() : 0, hub != nullptr};
  std::fprintf(out, "fern: greenlets of this thread (%zu)\n", Greenlet::live_count());
  detail::for_each_greenlet(&print_one, &l);
  if (hub) {
    LoopStats s = hub->stats();
    std::fprintf(out,
                 "  loop: %" PRIu64 " iterations, %" PRIu64 " callbacks, %" PRIu64 " timers fired, %" PRIu64
                 " fd events, max callback batch %.3f ms, %zu timers armed, %zu fds watched\n",
                 s.iterations, s.callbacks, s.timers, s.fd_events, static_cast<double>(s.max_batch) / 1e6,
                 hub->armed_timers(), hub->watched_fds());
  }
  std::fflush(out);
}

}  // namespace fern
