#pragma once
// Context variables per greenlet (GL-23): Python's contextvars as greenlet
// keeps them. Every greenlet (the main one too) has its own current
// context, empty (None) until a variable is set in it or one is assigned; a
// new greenlet does not inherit its parent's: a context goes to another
// greenlet only through set_context or Context::run. A switch changes the
// current context with the greenlet, at no cost to the switch.
//
// Mapping from Python:
//   v = ContextVar('v')                ContextVar<T> v;
//   v = ContextVar('v', default=d)     ContextVar<T> v(d);
//   v.get()                            v.get() -> T (a copy); no value and no default: LookupError
//   v.get(d)                           v.get_or(d) -> T
//   token = v.set(x); v.reset(token)   auto token = v.set(x); v.reset(token)
//   contextvars.copy_context()         Context::copy_current()
//   contextvars.Context()              Context::create()
//   ctx.run(f)                         ctx.run(f) -> f's result
//   v in ctx, ctx.get(v), len(ctx)     ctx.contains(v), ctx.get(v) -> std::optional<T>, ctx.size()
//   g.gr_context                       g.context() -> Context (an empty handle: None)
//   g.gr_context = ctx / None          g.set_context(ctx) / g.set_context(Context())
//   ctx is other                       ctx == other (the same context)
// Errors: get() with neither a value nor a default throws LookupError; run()
// of a context already entered (by any greenlet) or reset() with a token
// used before throws ContextError (RuntimeError); reset() with another
// variable's token or one made in another context throws
// std::invalid_argument (ValueError); the context of another thread's
// greenlet throws CrossThreadError (ValueError). Python's TypeErrors (a
// non-Context assigned) and `del g.gr_context` cannot be written in C++.
// Contexts, like greenlets, belong to one thread.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace fern {

class LookupError : public std::out_of_range {
 public:
  explicit LookupError(const char* what) : std::out_of_range(what) {}
};
class ContextError : public std::runtime_error {
 public:
  explicit ContextError(const char* what) : std::runtime_error(what) {}
};

namespace detail {

// A context: each variable's value (a shared, immutable box, so that a copy
// of the context costs one pointer per variable and get() needs no lock).
struct ContextData {
  std::unordered_map<std::uint64_t, std::shared_ptr<const void>> vars;  // by ContextVar id
  unsigned refs = 0;
  bool entered = false;  // inside a run()
};
inline void retain_context(ContextData* d) noexcept { ++d->refs; }
void release_context(ContextData* d) noexcept;

// A counted reference to a context (a greenlet's current one, a handle's).
class ContextRef {
 public:
  ContextRef() noexcept = default;
  explicit ContextRef(ContextData* d) noexcept : d_(d) {
    if (d_) retain_context(d_);
  }
  ContextRef(const ContextRef& o) noexcept : ContextRef(o.d_) {}
  ContextRef& operator=(ContextRef o) noexcept {
    std::swap(d_, o.d_);
    return *this;
  }
  ~ContextRef() {
    if (d_) release_context(d_);
  }
  ContextData* get() const noexcept { return d_; }

 private:
  ContextData* d_ = nullptr;
};

// The running greenlet's current context (greenlet.cpp keeps it with the
// greenlet), or null; setting it; the current one, made empty if none.
ContextData* current_context();
void set_current_context(const ContextRef& context);
ContextData& current_context_made();

const void* find_value(std::uint64_t var);  // in the current context, or null
std::shared_ptr<const void> set_value(std::uint64_t var, std::shared_ptr<const void> value);
// A number no other ContextVar of the process has (an address could be a
// gone variable's, whose values stay in the contexts that hold them).
std::uint64_t new_context_var_id() noexcept;

// Enters a context in the running greenlet for one run() (ContextError if
// it is entered already) and leaves it, restoring the one before, on every
// exit path.
class ContextScope {
 public:
  explicit ContextScope(ContextData* d);
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;
  ~ContextScope();

 private:
  ContextRef entered_, before_;
};

}  // namespace detail

template <class T>
class ContextVar;

// A handle to a context; the empty handle is Python's None.
class Context {
 public:
  Context() noexcept = default;
  static Context create();
  static Context copy_current();  // an empty current context copies as a new empty one

  explicit operator bool() const noexcept { return ref_.get() != nullptr; }
  friend bool operator==(const Context& a, const Context& b) noexcept { return a.ref_.get() == b.ref_.get(); }
  friend bool operator!=(const Context& a, const Context& b) noexcept { return !(a == b); }

  // Calls f with this context current in the calling greenlet, then makes
  // the one before current again. std::invalid_argument for an empty handle.
  template <class F>
  decltype(auto) run(F&& f) {
    detail::ContextScope scope(checked());
    return std::forward<F>(f)();
  }
  std::size_t size() const noexcept { return ref_.get() ? ref_.get()->vars.size() : 0; }
  template <class T>
  bool contains(const ContextVar<T>& v) const noexcept {
    return ref_.get() && ref_.get()->vars.count(v.id_) != 0;
  }
  template <class T>
  std::optional<T> get(const ContextVar<T>& v) const {
    if (!ref_.get()) return std::nullopt;
    auto it = ref_.get()->vars.find(v.id_);
    if (it == ref_.get()->vars.end()) return std::nullopt;
    return *static_cast<const T*>(it->second.get());
  }

 private:
  friend class Greenlet;
  explicit Context(detail::ContextData* d) noexcept : ref_(d) {}
  detail::ContextData* checked() const;
  detail::ContextRef ref_;
};

// What set() returns: reset() puts the variable back as it was before.
class ContextToken {
 private:
  template <class T>
  friend class ContextVar;
  ContextToken(std::uint64_t var, detail::ContextData* context, std::shared_ptr<const void> old)
      : var_(var), context_(context), old_(std::move(old)) {}
  void reset(std::uint64_t var);
  std::uint64_t var_;
  detail::ContextRef context_;
  std::shared_ptr<const void> old_;
  bool used_ = false;
};

// A variable whose value is per context (so per greenlet). Not copyable:
// it is its own key.
template <class T>
class ContextVar {
 public:
  ContextVar() = default;
  explicit ContextVar(T default_value) : default_(std::make_shared<const T>(std::move(default_value))) {}
  ~ContextVar() = default;  // its values stay in the contexts that hold them, unreachable
  ContextVar(const ContextVar&) = delete;
  ContextVar& operator=(const ContextVar&) = delete;

  T get() const {
    if (const void* v = detail::find_value(id_)) return *static_cast<const T*>(v);
    if (default_) return *default_;
    throw LookupError("fern: ContextVar::get: no value in this context and no default");
  }
  T get_or(T fallback) const {
    if (const void* v = detail::find_value(id_)) return *static_cast<const T*>(v);
    return fallback;
  }
  // Sets the value in the running greenlet's current context (made, empty,
  // if it has none).
  ContextToken set(T value) {
    std::shared_ptr<const void> old = detail::set_value(id_, std::make_shared<const T>(std::move(value)));
    return ContextToken(id_, detail::current_context(), std::move(old));
  }
  void reset(ContextToken& token) { token.reset(id_); }

 private:
  friend class Context;
  std::uint64_t id_ = detail::new_context_var_id();
  std::shared_ptr<const T> default_;
};

}  // namespace fern
