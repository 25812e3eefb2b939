// The cost of fern::hooks on the fast path: a 1-byte write and read on a
// ready socket, hooked (from a greenlet on a thread with a hub: the
// cooperative path, which never parks here), hooked from a thread without a
// hub (libc's path), and libc's own functions (the reference). One item is
// one call (a write and a read are two).
#include <benchmark/benchmark.h>

#include <sys/socket.h>
#include <unistd.h>

#include "fern/core/hub.h"
#include "fern/hooks/detail.h"
#include "fern/hooks/hooks.h"
#include "ratio_report.h"

namespace {

struct Pair {
  int fd[2] = {-1, -1};
  explicit Pair(bool hooked) {
    if (hooked) socketpair(AF_UNIX, SOCK_STREAM, 0, fd);
    else FERN_REAL(socketpair)(AF_UNIX, SOCK_STREAM, 0, fd);
  }
  ~Pair() {
    close(fd[0]);
    close(fd[1]);
  }
};

template <class Write, class Read>
void write_read_loop(benchmark::State& state, int (&fd)[2], Write w, Read r) {
  char c = 'x';
  for (auto _ : state) {
    benchmark::DoNotOptimize(w(fd[1], &c, 1));
    benchmark::DoNotOptimize(r(fd[0], &c, 1));
  }
  state.SetItemsProcessed(2 * state.iterations());
}

void BM_ReadWrite_libc(benchmark::State& state) {
  Pair p(false);
  write_read_loop(state, p.fd, FERN_REAL(write), FERN_REAL(read));
}
BENCHMARK(BM_ReadWrite_libc);

// The main greenlet of a thread with a hub: every call takes the
// cooperative path (the socket is ready, so none parks).
void BM_ReadWrite_hooked(benchmark::State& state) {
  fern::hooks::patch_all();
  fern::Hub::current();
  Pair p(true);
  write_read_loop(state, p.fd, ::write, ::read);
}
BENCHMARK(BM_ReadWrite_hooked);

// No hub on this thread: the hooks hand the call to libc.
void BM_ReadWrite_hookednohub(benchmark::State& state) {
  fern::hooks::patch_all();
  fern::Hub::destroy_current();
  Pair p(true);
  write_read_loop(state, p.fd, ::write, ::read);
}
BENCHMARK(BM_ReadWrite_hookednohub);

fern::bench::Reference reference(const std::string& subject) { return {subject, "libc"}; }

}  // namespace

int main(int argc, char** argv) { return fern::bench::run_with_ratios(argc, argv, &reference); }
