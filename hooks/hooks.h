#pragma once
// fern::hooks: libc's blocking calls made cooperative, so that unmodified
// blocking C libraries (hiredis, libcurl, libpq, ...) run concurrently on
// one thread (gevent's monkey patching; Tencent libco's syscall hooks).
//
// Enabling: link the target fern::hooks into the program (it defines read,
// connect, poll, ... in the executable, ahead of libc, for every library the
// program uses), then call patch_all() (or one of the patch_* below), as a
// gevent program calls monkey.patch_all() first. FERN_HOOKS=all in the
// environment patches everything at load time (for a program that cannot
// be changed; libfern_hooks.so can be LD_PRELOADed into a program linked
// against it). Nothing is cooperative before a patch_*.
//
// Mapping from gevent:
//   monkey.patch_all()        patch_all()
//   monkey.patch_socket()     patch_socket(): socket, connect, accept(4), read(v), recv(from,msg),
//                             write(v), send(to,msg); with the dns group, as gevent's dns=True
//   monkey.patch_select()     patch_select(): poll, ppoll, select, pselect
//   monkey.patch_time()       patch_time(): sleep, usleep, nanosleep, clock_nanosleep
//   (patch_socket's dns)      patch_dns(): getaddrinfo, gethostbyname, gethostbyname_r (in the
//                             thread pool, as fern::getaddrinfo)
//   monkey.is_object_patched  is_patched("select"); patched_functions() lists them all
//   monkey.patch_os/_thread/_ssl/_subprocess/_signal   not provided (file I/O, threads, fork
//                             and signals keep libc's behaviour; ssl works over hooked sockets)
// Always interposed, patched or not (bookkeeping, never blocking): close,
// close_range and closefrom (wake greenlets waiting on the fd with EBADF, as
// fern::close), fcntl and
// ioctl(FIONBIO) (keep the application's own O_NONBLOCK view), dup/dup2/dup3
// and setsockopt (SO_RCVTIMEO/SO_SNDTIMEO). Like the kernel, they keep
// O_NONBLOCK and the timeouts per open file: every dup of it shares them.
//
// The rule for every hooked blocking call: from a greenlet that is not the
// hub, on a thread that has a hub, on a socket the application has not made
// non-blocking itself, a call that would block parks only that greenlet on the
// hub (fern's wait_read / wait_write with one Deadline per call from
// SO_RCVTIMEO / SO_SNDTIMEO, as the kernel counts and, for an accepted TCP
// socket, copies them from the listener); ppoll and pselect with a signal mask
// park too, the mask applied by the kernel's ppoll at every check (a pending
// signal it lets in ends the call with EINTR, the thread's own mask is never
// changed); everywhere else (in the hub, on a thread without a hub, on a
// regular file, pipe or terminal) it is libc's call. Results and errno are
// what libc gives: a timeout is -1/EAGAIN (connect: EINPROGRESS), a socket
// closed under a parked call is -1/EBADF, a MSG_DONTWAIT call never waits
// (from any caller), a timeout, fd_set, msghdr, iovec array or FIONBIO flag
// the kernel could not read is EFAULT (the hooks copy them in with
// process_vm_readv, or read them only once the kernel has), a blocking
// send the hooks finish in parts returns the count sent when the peer goes,
// without SIGPIPE (the kernel signals only a call that sent nothing), a
// connect leaves the socket as the kernel's blocking one does (a second
// connect: EISCONN, or a new try after a failure); a connect to a full
// AF_UNIX backlog has no readiness to wait for: it is tried again every 1
// to 16 ms (doubling) until accepted. A parked call can be interrupted by fern (Timeout, kill): the
// exception propagates through the caller, as in gevent; a second greenlet
// waiting on the same socket in the same direction gets
// ConcurrentObjectUseError (IO-2).
//
// Signals: a handler runs while a greenlet is parked in a hooked call (the
// hub's wait is interrupted for it), but the parked call goes on: it is not
// ended with EINTR, SA_RESTART or not, as gevent's waits are not (ppoll and
// pselect with a mask, above, are the exception). To leave a blocking call
// on a signal, end it from fern's side: a Timeout, kill, or fern's
// signal_handler (io/signal.h), which runs in a greenlet. Where a call is
// libc's (no hub, the hub itself) a handler gives EINTR as usual.
//
// Limits (core's, not the hooks'): the hub keeps an fd's poller interest
// after a wait (no epoll_ctl per call) and forgets it on the hooked close;
// an fd closed where the hooks do not see it (fclose, or a raw
// syscall(SYS_close), or close in another thread while this thread's hub
// holds the interest) can leave that interest behind, which the kernel has
// forgotten: a new fd with the same number then wakes its waiter only at the
// idle loop's next revalidation (once a second), which registers it again;
// a fork child drops such fds. The hooks' O_NONBLOCK is hidden from
// the application's fcntl, not from the kernel: stdio on a socket a
// greenlet used (fdopen + fgets from libc's side) sees EAGAIN, and a child
// that inherits the socket (exec) inherits the non-blocking open file.
#include <string>
#include <vector>

namespace fern::hooks {

enum Group : unsigned {
  kSocket = 1,  // socket I/O
  kSelect = 2,  // poll / select
  kTime = 4,    // the sleep family
  kDns = 8,     // name resolution
  kAll = 15,
};

// Makes the calls of `groups` cooperative (any thread, any time).
void patch(unsigned groups) noexcept;
// Back to libc's blocking behaviour for `groups`.
void unpatch(unsigned groups) noexcept;
inline void patch_all() noexcept { patch(kAll); }
inline void patch_socket() noexcept { patch(kSocket | kDns); }
inline void patch_select() noexcept { patch(kSelect); }
inline void patch_time() noexcept { patch(kTime); }
inline void patch_dns() noexcept { patch(kDns); }
// The groups patched now.
unsigned patched_groups() noexcept;

struct HookedFunction {
  const char* name;   // the libc name, e.g. "recvfrom"
  unsigned group;     // its Group; 0: always interposed (bookkeeping only)
  bool patched;       // cooperative now
};
// Every libc function this library interposes, in a fixed order.
std::vector<HookedFunction> patched_functions();
// True when `name` is interposed and cooperative now (false for an unknown name).
bool is_patched(const std::string& name);

}  // namespace fern::hooks
