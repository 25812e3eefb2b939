#pragma once
// What StreamServer and DatagramServer share (gevent's BaseServer): the
// serving task (an accept or read loop) paused and resumed, the bound
// socket made on start(), stop()'s end of the running handlers, and a
// stderr line at most once a second. Internal.
#include <functional>
#include <vector>

#include "fern/core/clock.h"
#include "fern/core/deadline.h"
#include "fern/core/task.h"
#include "fern/io/address.h"
#include "fern/io/socket.h"

namespace fern::detail {

// A new socket of `type` bound to `address` (SO_REUSEADDR unless AF_UNIX,
// when asked; SO_REUSEPORT when asked).
Socket bound_socket(const Address& address, int type, bool reuse_addr, bool reuse_port);

// The serving task: resume starts loop() in a task unless one runs; pause
// kills it and waits for it to end.
void resume_serving(Task<void>& task, std::function<void()> loop);
void pause_serving(Task<void>& task);

// The running handlers (less the calling one, which may stop its own
// server) get until `deadline` to end; those `running()` still lists are
// then killed and get one second more (SRV-5, gevent's pool.kill(block=True,
// timeout=1)). One that swallows its kill is left running: the server's
// destructor kills it again and waits, since it runs in the server's memory.
void end_handlers(Deadline deadline, const std::function<std::vector<AnyTask>()>& running);

// The handlers in `tasks` less the one running now.
std::vector<AnyTask> all_but_current(std::vector<AnyTask> tasks);

// True at most once a second (`last`: the time of the last true, 0 at first).
bool once_a_second(Nanos& last) noexcept;

}  // namespace fern::detail
