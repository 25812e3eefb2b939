#pragma once
// Seeing inside a running program (gevent's print_run_info): every greenlet
// of the thread with its state, parent, stack use and what it waits on, and
// the hub's loop statistics. The gdb script tools/fern_gdb.py prints the same
// listing for every thread of a stopped process (`fern greenlets`) and
// backtraces a parked greenlet (`fern bt <id>`).
#include <cstdio>

namespace fern {

// Prints the calling thread's greenlets and its hub's loop statistics to
// `out`, one greenlet a line:
//   #3  parked     parent #1  stack 1184/65536  <Task "worker" at 0x...>  Event.wait 0x...
// States: running, suspended (switched away by hand or ready to run),
// parked (in a hub wait: what follows names it), unstarted, dead.
// No switch; allocates (task names). Call it from any greenlet of the thread.
void dump_greenlets(std::FILE* out = stderr);

}  // namespace fern
