// Twin of gevent's tutorial program 13_monkey_patch_print.py: what socket
// and select are before and after monkey patching. In C++ the question is
// whether libc's socket() and select() are fern's cooperative versions now
// (fern::hooks::is_patched); the twin prints the answer in the reference's
// words: Python's repr of what socket.socket and select.select then are,
// with the address of the interposed select for gevent's function.
#include <sys/select.h>

#include <cstdio>

#include "fern/hooks/hooks.h"

namespace {

void print_socket() {
  std::puts(fern::hooks::is_patched("socket") ? "<class 'gevent._socket3.socket'>" : "<class 'socket.socket'>");
}

void print_select() {
  if (fern::hooks::is_patched("select"))
    std::printf("<function select at %p>\n", reinterpret_cast<void*>(&::select));
  else
    std::puts("<built-in function select>");
}

}  // namespace

int main() {
  print_socket();

  std::puts("After monkey patch");
  fern::hooks::patch_socket();
  print_socket();

  print_select();
  fern::hooks::patch_select();
  std::puts("After monkey patch");
  print_select();
}
