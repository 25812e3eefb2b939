// A library of the vendoring project that links fern (see vendored/).
#include "fern/core/greenlet.h"

int consumer_lib_answer() {
  fern::Greenlet g([] { return 42; });
  return fern::value_cast<int>(g.switch_to());
}
