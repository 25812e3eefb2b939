// Context variables per greenlet (GL-23); the greenlet keeps its current
// context (greenlet.cpp), this file what a context holds.
#include "fern/core/context.h"

#include <atomic>

namespace fern {
namespace detail {

void release_context(ContextData* d) noexcept {
  if (--d->refs == 0) delete d;  // values' destructors may run user code
}

std::uint64_t new_context_var_id() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

const void* find_value(std::uint64_t var) {
  ContextData* d = current_context();
  if (!d) return nullptr;
  auto it = d->vars.find(var);
  return it == d->vars.end() ? nullptr : it->second.get();
}

ContextData& current_context_made() {
  if (ContextData* d = current_context()) return *d;
  ContextRef made(new ContextData);
  set_current_context(made);
  return *made.get();  // the greenlet holds it now
}

std::shared_ptr<const void> set_value(std::uint64_t var, std::shared_ptr<const void> value) {
  std::shared_ptr<const void>& box = current_context_made().vars[var];
  std::swap(box, value);
  return value;  // the one before (null: none)
}

ContextScope::ContextScope(ContextData* d) : entered_(d) {
  if (d->entered) throw ContextError("fern: Context::run: the context is entered already");
  before_ = ContextRef(current_context());
  set_current_context(entered_);  // may throw (no memory): not entered then
  d->entered = true;
}

// The greenlet's slot exists (set above): restoring it allocates nothing.
ContextScope::~ContextScope() {
  entered_.get()->entered = false;
  set_current_context(before_);
}

}  // namespace detail

Context Context::create() { return Context(new detail::ContextData); }

Context Context::copy_current() {
  auto* copy = new detail::ContextData;
  Context out(copy);
  if (detail::ContextData* d = detail::current_context()) copy->vars = d->vars;
  return out;
}

detail::ContextData* Context::checked() const {
  if (!ref_.get()) throw std::invalid_argument("fern: Context::run on an empty context (None)");
  return ref_.get();
}

void ContextToken::reset(std::uint64_t var) {
  if (var != var_) throw std::invalid_argument("fern: ContextVar::reset: the token was made by another variable");
  if (used_) throw ContextError("fern: ContextVar::reset: the token has been used already");
  detail::ContextData* d = detail::current_context();
  if (d != context_.get())
    throw std::invalid_argument("fern: ContextVar::reset: the token was made in another context");
  if (old_) d->vars[var_] = old_;
  else d->vars.erase(var_);
  used_ = true;
}

}  // namespace fern
