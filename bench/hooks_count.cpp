// A deterministic loop per hooks_bench row, for instruction counting
// (callgrind_ops.sh): N calls (N/2 one-byte writes and N/2 reads on a
// ready socket pair) of one subject.
//
//   hooks_count N SUBJECT      SUBJECT: readwrite_libc, readwrite_hooked, readwrite_hookednohub
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fern/core/hub.h"
#include "fern/hooks/detail.h"
#include "fern/hooks/hooks.h"

namespace {

template <class Write, class Read>
void loop(long n, bool hooked, Write w, Read r) {
  int fd[2];
  if (hooked) socketpair(AF_UNIX, SOCK_STREAM, 0, fd);
  else FERN_REAL(socketpair)(AF_UNIX, SOCK_STREAM, 0, fd);
  char c = 'x';
  for (long i = 0; i < n / 2; ++i) {
    if (w(fd[1], &c, 1) != 1 || r(fd[0], &c, 1) != 1) std::abort();
  }
  close(fd[0]);
  close(fd[1]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s N readwrite_libc|readwrite_hooked|readwrite_hookednohub\n", argv[0]);
    return 2;
  }
  long n = std::atol(argv[1]);
  fern::hooks::patch_all();
  if (std::strcmp(argv[2], "readwrite_libc") == 0) {
    loop(n, false, FERN_REAL(write), FERN_REAL(read));
  } else if (std::strcmp(argv[2], "readwrite_hooked") == 0) {
    fern::Hub::current();
    loop(n, true, ::write, ::read);
  } else if (std::strcmp(argv[2], "readwrite_hookednohub") == 0) {
    loop(n, true, ::write, ::read);
  } else {
    std::fprintf(stderr, "unknown subject %s\n", argv[2]);
    return 2;
  }
}
