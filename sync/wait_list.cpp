// A primitive's single wake-up callback.
#include "fern/sync/wait_list.h"

namespace fern::detail {

// The queued callback leaves the hub's queue by itself (Hook); a running
// one learns through `gone` that its primitive is no more.
Notifier::~Notifier() {
  if (gone_) *gone_ = true;
}

void Notifier::fire(Callback* cb) {
  auto* self = static_cast<Notifier*>(cb);
  bool gone = false;
  self->gone_ = &gone;
  self->again_ = false;
  struct Finish {
    Notifier* self;
    bool& gone;
    ~Finish() {
      if (gone) return;  // the primitive (and this Notifier) no longer exist
      self->gone_ = nullptr;
      if (self->again_) {
        self->again_ = false;
        Hub::current().schedule(self);
      }
    }
  } finish{self, gone};
  self->run_(self->owner_, gone);
}

}  // namespace fern::detail
