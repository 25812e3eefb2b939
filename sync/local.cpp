// Greenlet-local values keyed by greenlet id; each is destroyed by an exit
// hook of its greenlet, or with the table.
#include "fern/sync/local.h"

#include <exception>
#include <new>

#include "fern/core/hub.h"

namespace fern::detail {

LocalTable::~LocalTable() {
  // Detached first, so a destructor that reaches this local finds no value
  // being destroyed; one that makes a new value (or another greenlet that
  // does while a destructor blocks) adds it to entries_ again, and it goes
  // in the next pass, not left with an exit hook into a dead table.
  while (!entries_.empty()) {
    auto entries = std::move(entries_);
    entries_.clear();
    for (auto& [id, e] : entries) {
      Greenlet::cancel_exit(&e.hook);
      destroy(e.value);
    }
  }
}

void* LocalTable::find() const noexcept {
  auto it = entries_.find(Greenlet::current().id());
  return it == entries_.end() ? nullptr : it->second.value;
}

// Ownership passes only once the entry exists: if the emplace throws, or an
// entry exists already (T's constructor made one through this local), the
// caller still owns (and frees) the value.
void* LocalTable::insert(void* value) {
  unsigned long id = Greenlet::current().id();
  auto [it, inserted] = entries_.emplace(id, Entry{GreenletExitHook{}, this, value});
  if (!inserted) return it->second.value;
  it->second.hook.fn = &on_exit;
  // Not for the main greenlet: it ends with the thread. For another, false
  // is no memory for its exit hooks: the entry goes, the caller frees the value.
  if (!Greenlet::at_exit(&it->second.hook) && !Greenlet::current().is_main()) {
    entries_.erase(it);
    throw std::bad_alloc();
  }
  return value;
}

// Runs on the ending greenlet's stack, with that greenlet current.
void LocalTable::on_exit(GreenletExitHook* hook) noexcept {
  auto* entry = reinterpret_cast<Entry*>(hook);
  entry->table->erase();
}

bool LocalTable::erase() noexcept {
  auto it = entries_.find(Greenlet::current().id());
  if (it == entries_.end()) return false;
  Greenlet::cancel_exit(&it->second.hook);
  void* value = it->second.value;
  entries_.erase(it);  // unhook first, destroy after: a destructor may use this local again
  destroy(value);
  return true;
}

// A destructor that throws (one declared noexcept(false)) is reported, as
// gevent reports an exception raised in __del__; the delete-expression
// frees the memory all the same, and the other values still go.
void LocalTable::destroy(void* value) noexcept {
  try {
    destroy_(value);
  } catch (...) {
    Hub::report_error("the destructor of a local's value", std::current_exception());
  }
}

}  // namespace fern::detail
