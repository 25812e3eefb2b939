// Group and Pool: members tracked through task links; a Pool's slots are a
// Semaphore released when a member leaves.
#include "fern/sync/group.h"

#include <limits>

namespace fern {

Group::Group() { empty_.set(); }

Group::~Group() {
  for (Member& m : members_) m.task->unlink(m.link);
}

bool Group::add_until(const AnyTask& task, Deadline) {
  add_member(task);
  return true;
}

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

bool Group::join(const JoinAll& options) {
  std::vector<AnyTask> watched;
  if (options.raise) watched = members();
  bool empty = empty_.wait_until(options.deadline);
  if (options.raise) {
    for (const AnyTask& t : watched)
      if (t->exception()) std::rethrow_exception(t->exception());
  }
  return empty;
}

// Marks a member as being killed; false when it is not a member or already
// marked (PL-3: each member gets the exception once).
bool Group::mark_dying(const AnyTask& task) {
  auto found = index_.find(task.get());
  if (found == index_.end() || found->second->dying) return false;
  found->second->dying = true;
  return true;
}

bool Group::kill_async(std::exception_ptr error) {
  // Mark first: kill of an unstarted task ends it at once (GV-5), and its
  // link (which removes it) may run before the loop below is done.
  std::vector<AnyTask> batch;
  for (Member& m : members_)
    if (mark_dying(m.task)) batch.push_back(m.task);
  for (const AnyTask& t : batch) t->kill_async(error);
  return members_.empty();
}

bool Group::kill_until(Deadline deadline, std::exception_ptr error) {
  while (!members_.empty()) {
    kill_async(error);
    std::vector<AnyTask> alive = members();
    if (joinall(alive, JoinAll().until(deadline)).size() < alive.size()) break;
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

bool Group::killone_async(const AnyTask& task, std::exception_ptr error) {
  if (mark_dying(task)) task->kill_async(std::move(error));
  return task->dead();
}

bool Group::killone_until(const AnyTask& task, Deadline deadline, std::exception_ptr error) {
  if (!mark_dying(task)) return task->dead();
  if (!task->kill_async(std::move(error))) task->join_until(deadline);
  return task->dead();
}

std::size_t Group::free_count() const noexcept { return std::numeric_limits<std::size_t>::max(); }

long Group::wait_available_until(Deadline) { return std::numeric_limits<long>::max(); }

namespace {
std::optional<long> checked_size(std::optional<long> size) {
  if (size && *size < 0) throw std::invalid_argument("fern: pool size must not be negative");
  return size;
}
}  // namespace

Pool::Pool(std::optional<long> size) : capacity_(checked_size(size)) {
  if (capacity_) slots_.emplace(*capacity_);
}

bool Pool::add_until(const AnyTask& task, Deadline deadline) {
  if (!task || contains(task)) return true;
  if (slots_) {
    bool got = deadline.expired(0) ? slots_->try_acquire() : slots_->acquire_until(deadline);
    if (!got) return false;
  }
  if (contains(task)) {  // added by someone else while we waited
    if (slots_) slots_->release();
    return true;
  }
  try {
    add_member(task);
  } catch (...) {
    if (slots_) slots_->release();
    throw;
  }
  return true;
}

std::size_t Pool::free_count() const noexcept {
  if (!capacity_) return Group::free_count();
  auto cap = static_cast<std::size_t>(*capacity_);
  return size() >= cap ? 0 : cap - size();
}

long Pool::wait_available_until(Deadline deadline) {
  if (!slots_) return Group::wait_available_until(deadline);
  return slots_->wait_until(deadline);
}

void Pool::on_removed() noexcept {
  if (slots_) slots_->release();
}

}  // namespace fern
