// gevent.wait / iwait: one link per object feeding one queue of indices.
#include "fern/sync/wait_any.h"

namespace fern {

Waitable::Waitable(const AnyTask& task)
    : object_(task.get()),
      task_(task),
      ready_([](void* o) { return static_cast<TaskBase*>(o)->ready(); }),
      link_([](void* o, std::function<void()> fn, std::size_t*) {
        return static_cast<TaskBase*>(o)->link([fn = std::move(fn)](TaskBase&) { fn(); });
      }),
      unlink_([](void* o, std::size_t id) noexcept { static_cast<TaskBase*>(o)->unlink(id); }) {}

Waitable::Waitable(Event& event)
    : object_(&event),
      ready_([](void* o) { return static_cast<Event*>(o)->is_set(); }),
      link_([](void* o, std::function<void()> fn, std::size_t* holder) {
        return static_cast<Event*>(o)->rawlink(std::move(fn), holder);
      }),
      unlink_([](void* o, std::size_t id) noexcept { static_cast<Event*>(o)->unlink(id); }) {}

Waitable::Waitable(Semaphore& semaphore)
    : object_(&semaphore),
      ready_([](void* o) { return static_cast<Semaphore*>(o)->counter() > 0; }),
      link_([](void* o, std::function<void()> fn, std::size_t* holder) {
        return static_cast<Semaphore*>(o)->rawlink([fn = std::move(fn)](Semaphore&) { fn(); }, holder);
      }),
      unlink_([](void* o, std::size_t id) noexcept { static_cast<Semaphore*>(o)->unlink(id); }) {}

IWait::IWait(std::vector<Waitable> objects, const WaitAny& options)
    : objects_(std::move(objects)), links_(objects_.size(), 0), deadline_(options.deadline) {
  remaining_ = options.n == 0 || options.n > objects_.size() ? objects_.size() : options.n;
  for (std::size_t i = 0; i < objects_.size(); ++i) {
    if (objects_[i].ready()) {
      ready_.push_back(i);
      continue;
    }
    links_[i] = objects_[i].link_(objects_[i].object_, [this, i] { became_ready(i); }, &links_[i]);
  }
}

IWait::~IWait() {
  for (std::size_t i = 0; i < objects_.size(); ++i)
    if (links_[i]) objects_[i].unlink_(objects_[i].object_, links_[i]);
}

// Runs in the hub, from the object's link.
void IWait::became_ready(std::size_t index) {
  if (!links_[index]) return;
  objects_[index].unlink_(objects_[index].object_, links_[index]);
  links_[index] = 0;
  ready_.push_back(index);
  if (waiter_) waiter_->wake();
}

std::optional<std::size_t> IWait::next() {
  if (waiter_)
    throw ConcurrentObjectUseError(
        "fern: IWait::next() called while another greenlet waits in it; give each greenlet its own IWait");
  if (remaining_ == 0) return std::nullopt;
  if (ready_.empty()) {
    Waiter waiter;
    waiter_ = &waiter;
    // This IWait may be destroyed while parked (by another greenlet): then
    // nothing of it is touched again, on any exit.
    detail::Liveness::Guard alive(liveness_);
    struct Forget {
      IWait* self;
      const detail::Liveness::Guard& alive;
      ~Forget() {
        if (!alive.gone()) self->waiter_ = nullptr;
      }
    } forget{this, alive};
    Hub::current().park(waiter, deadline_, "iwait", this);
    if (alive.gone()) return std::nullopt;
  }
  if (ready_.empty()) return std::nullopt;
  std::size_t index = ready_.front();
  ready_.pop_front();
  --remaining_;
  return index;
}

std::vector<std::size_t> wait(std::vector<Waitable> objects, const WaitAny& options) {
  IWait it(std::move(objects), options);
  std::vector<std::size_t> out;
  while (auto index = it.next()) out.push_back(*index);
  return out;
}

}  // namespace fern
