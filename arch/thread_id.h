#pragma once
// The calling OS thread's number as debuggers and ps show it (Linux: the
// kernel's thread id, gdb's LWP; elsewhere the pthread handle's value).
// Async-signal-safe.
namespace fern::arch {
long thread_id() noexcept;
}
