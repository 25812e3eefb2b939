// Greenlet-local values keyed by greenlet id, swept lazily once their
// greenlet has ended (core offers no greenlet-end hook).
#include "fern/sync/local.h"

#include <algorithm>
#include <vector>

namespace fern::detail {

LocalTable::~LocalTable() {
  // A value's destructor may touch other locals, never this one: detach first.
  auto entries = std::move(entries_);
  for (auto& [id, e] : entries) destroy_(e.value);
}

void* LocalTable::find() const noexcept {
  auto it = entries_.find(Greenlet::current().id());
  return it == entries_.end() ? nullptr : it->second.value;
}

void LocalTable::insert(void* value) {
  if (entries_.size() + 1 >= sweep_at_) {
    collect();
    sweep_at_ = std::max<std::size_t>(16, 2 * (entries_.size() + 1));
  }
  Greenlet me = Greenlet::current();
  unsigned long id = me.id();
  try {
    entries_.emplace(id, Entry{std::move(me), value});
  } catch (...) {
    destroy_(value);
    throw;
  }
}

bool LocalTable::erase() noexcept {
  auto it = entries_.find(Greenlet::current().id());
  if (it == entries_.end()) return false;
  void* value = it->second.value;
  entries_.erase(it);
  destroy_(value);
  return true;
}

std::size_t LocalTable::collect() {
  // Unhook first, destroy after: a destructor may use this local again.
  std::vector<void*> dead;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.owner.dead()) {
      dead.push_back(it->second.value);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  for (void* v : dead) destroy_(v);
  return dead.size();
}

}  // namespace fern::detail
