// Group and Pool: members tracked through task links; a Pool's slots are a
// Semaphore released when a member leaves.
#include "fern/sync/group.h"

#include <limits>

namespace fern {

Group::Group() { empty_.set(); }

Group::~Group() {
  for (Member& m : members_) m.task->unlink(m.link);
}

void Group::add(const AnyTask& task, bool, double) { add_member(task); }

void Group::add_member(const AnyTask& task) {
  if (!task || contains(task)) return;
  members_.push_back(Member{task, 0, false});
  auto it = std::prev(members_.end());
  index_.emplace(task.get(), it);
  // A task that already ended is linked too: its link runs soon (GV-11).
  it->link = task->link([this](TaskBase& t) { remove(&t, false); });
  empty_.clear();
}

void Group::discard(const AnyTask& task) {
  if (task) remove(task.get(), true);
}

void Group::remove(TaskBase* task, bool unlink) {
  auto found = index_.find(task);
  if (found == index_.end()) return;
  auto it = found->second;
  if (unlink) task->unlink(it->link);
  index_.erase(found);
  members_.erase(it);  // may drop the last handle: `task` is not used after this
  if (members_.empty()) empty_.set();
  on_removed();
}

bool Group::contains_current() const {
  Greenlet me = Greenlet::current();
  for (const Member& m : members_)
    if (m.task->greenlet() == me) return true;
  return false;
}

std::vector<AnyTask> Group::members() const {
  std::vector<AnyTask> out;
  out.reserve(members_.size());
  for (const Member& m : members_) out.push_back(m.task);
  return out;
}

bool Group::join(double timeout, bool raise_error) {
  std::vector<AnyTask> watched;
  if (raise_error) watched = members();
  bool empty = empty_.wait(timeout);
  if (raise_error) {
    for (const AnyTask& t : watched)
      if (t->exception()) std::rethrow_exception(t->exception());
  }
  return empty;
}

bool Group::kill(std::exception_ptr error, bool block, double timeout) {
  Hub& hub = Hub::current();
  const Nanos deadline = timeout >= 0 ? hub.update_now() + seconds_to_nanos(timeout) : 0;
  while (!members_.empty()) {
    // Mark first: kill() of an unstarted task ends it at once (GV-5).
    std::vector<AnyTask> batch;
    for (Member& m : members_) {
      if (m.dying) continue;
      m.dying = true;
      batch.push_back(m.task);
    }
    for (const AnyTask& t : batch) t->kill(error, false);
    if (!block) break;
    double left = -1;
    if (timeout >= 0) {
      Nanos now = hub.update_now();
      if (now >= deadline) break;
      left = static_cast<double>(deadline - now) / 1e9;
    }
    std::vector<AnyTask> alive = members();
    if (joinall(alive, left).size() < alive.size()) break;
    // A member leaves through its link, which runs before any later link,
    // so after a wait in joinall it is gone. A task killed before it started
    // ended at once, with its link still queued: yield so that it runs.
    for (const Member& m : members_) {
      if (m.task->dead()) {
        sleep(0);
        break;
      }
    }
  }
  return members_.empty();
}

bool Group::killone(const AnyTask& task, std::exception_ptr error, bool block, double timeout) {
  auto found = index_.find(task.get());
  if (found != index_.end() && !found->second->dying) {
    found->second->dying = true;
    task->kill(std::move(error), false);
  }
  if (block && !task->dead()) task->join(timeout);
  return task->dead();
}

std::size_t Group::free_count() const noexcept { return std::numeric_limits<std::size_t>::max(); }

long Group::wait_available(double) { return std::numeric_limits<long>::max(); }

namespace {
std::optional<long> checked_size(std::optional<long> size) {
  if (size && *size < 0) throw std::invalid_argument("fern: pool size must not be negative");
  return size;
}
}  // namespace

Pool::Pool(std::optional<long> size) : capacity_(checked_size(size)) {
  if (capacity_) slots_.emplace(*capacity_);
}

void Pool::add(const AnyTask& task, bool blocking, double timeout) {
  if (!task || contains(task)) return;
  if (slots_ && !slots_->acquire(blocking, timeout)) throw PoolFull();
  if (contains(task)) {  // added by someone else while we waited
    if (slots_) slots_->release();
    return;
  }
  try {
    add_member(task);
  } catch (...) {
    if (slots_) slots_->release();
    throw;
  }
}

std::size_t Pool::free_count() const noexcept {
  if (!capacity_) return Group::free_count();
  auto cap = static_cast<std::size_t>(*capacity_);
  return size() >= cap ? 0 : cap - size();
}

long Pool::wait_available(double timeout) {
  if (!slots_) return Group::wait_available(timeout);
  return slots_->wait(timeout);
}

void Pool::on_removed() noexcept {
  if (slots_) slots_->release();
}

}  // namespace fern
