// A primitive's single wake-up callback.
#include "fern/sync/wait_list.h"

namespace fern::detail {

Notifier::~Notifier() {
  if (Callback::queued) {
    if (Hub* hub = Hub::current_if_exists()) hub->unschedule(this);
  }
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
