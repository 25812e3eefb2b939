// The cold paths of fern::Value: errors, type names and the cross-library
// type match.
#include "fern/core/value.h"

#include <cstring>
#include <string>

namespace fern {
namespace {

// The readable name of a type, or what an empty Value holds.
std::string describe(TypeId type) {
  if (type == type_id<void>()) return "nothing (an empty Value)";
  return type.name();
}

// Names that are not unique in the program: GCC spells every lambda of one
// function alike, and anonymous namespaces of different files alike.
bool unique_name(const char* signature) noexcept {
  return !std::strstr(signature, "<lambda") && !std::strstr(signature, "(lambda") &&
         !std::strstr(signature, "anonymous");
}

}  // namespace

// GCC: "... type_signature() [with T = int]"; Clang: "... [T = int]".
std::string TypeId::name() const {
  const char* signature = type_->signature;
  const char* begin = std::strstr(signature, "T = ");
  const char* end = std::strrchr(signature, ']');
  if (!begin || !end || end < begin) return signature;
  return std::string(begin + 4, end);
}

BadValueCast::BadValueCast(TypeId wanted, TypeId held)
    : message_("fern: bad value_cast: wanted " + describe(wanted) + ", but the Value holds " +
               describe(held)),
      wanted_(wanted),
      held_(held) {}

BadValueCopy::BadValueCopy(TypeId held)
    : std::logic_error("fern: cannot copy a Value holding the move-only type " + describe(held) +
                       "; move the Value instead") {}

namespace detail {

bool same_type_name(const TypeDescriptor* a, const TypeDescriptor* b) noexcept {
  return std::strcmp(a->signature, b->signature) == 0 && unique_name(a->signature);
}

bool same_value_type(const ValueOps* held, TypeId wanted) noexcept { return held->type == wanted; }

void throw_bad_value_cast(TypeId wanted, TypeId held) { throw BadValueCast(wanted, held); }

void throw_bad_value_copy(TypeId held) { throw BadValueCopy(held); }

}  // namespace detail
}  // namespace fern
