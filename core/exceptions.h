#pragma once
// Exceptions of the greenlet layer.
//
// GreenletExit deliberately does not derive from std::exception (as in
// greenlet, where it derives from BaseException): `catch (const
// std::exception&)` in user code does not swallow a kill.
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

namespace fern {

// Thrown into a greenlet to kill it (throw_in() with no argument, or the
// destruction of its last handle while suspended). A greenlet that lets it
// escape dies successfully: its parent receives the GreenletExit as a value.
class GreenletExit {
 public:
  GreenletExit() = default;
  explicit GreenletExit(std::string message) : message_(std::move(message)) {}
  const std::string& message() const noexcept { return message_; }

 private:
  std::string message_;
};

// Whether `error` holds a GreenletExit (a kill, which counts as a result).
bool is_greenlet_exit(const std::exception_ptr& error) noexcept;

// gevent's ConcurrentObjectUseError: a second greenlet waiting where only one
// may: on the same socket (or fd a Socket or a hooked call owns) in the same
// direction (IO-2), in the same IWait (sync/wait_any.h).
class ConcurrentObjectUseError : public std::logic_error {
 public:
  explicit ConcurrentObjectUseError(const std::string& what) : std::logic_error(what) {}
};

// Misuse of the greenlet API (greenlet.error and its ValueError /
// AttributeError cases in Python): switching to an empty handle or to a
// greenlet without a run function, re-parenting a main greenlet.
class GreenletError : public std::logic_error {
 public:
  explicit GreenletError(const std::string& what) : std::logic_error(what) {}
};

// A greenlet parked in a hub wait was switched into by something other than
// its waiter (gevent's InvalidSwitchError, GV-21), or throw_in aimed at the
// hub's own greenlet (its loop would end for good).
class InvalidSwitchError : public std::logic_error {
 public:
  explicit InvalidSwitchError(const std::string& what) : std::logic_error(what) {}
};

// A parent change that would make the parent chain a cycle (GL-14).
class CyclicParentError : public GreenletError {
 public:
  CyclicParentError() : GreenletError("fern: cyclic parent chain") {}
};

// Switching to, throwing into, or re-parenting onto a greenlet of another
// thread (GL-18). Greenlets never migrate between threads.
class CrossThreadError : public GreenletError {
 public:
  explicit CrossThreadError(const std::string& what) : GreenletError(what) {}
};

}  // namespace fern
