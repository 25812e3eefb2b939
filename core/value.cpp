// The cold paths of fern::Value: errors and the cross-library type match.
#include "fern/core/value.h"

#include <cxxabi.h>

#include <cstdlib>
#include <string>

namespace fern {
namespace {

// The readable name of a type (the mangled one if demangling fails).
std::string type_name(const std::type_info& type) {
  if (type == typeid(void)) return "nothing (an empty Value)";
  int status = 0;
  char* demangled = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  std::string name = status == 0 && demangled ? demangled : type.name();
  std::free(demangled);
  return name;
}

}  // namespace

BadValueCast::BadValueCast(const std::type_info& wanted, const std::type_info& held)
    : message_("fern: bad value_cast: wanted " + type_name(wanted) + ", but the Value holds " +
               type_name(held)),
      wanted_(&wanted),
      held_(&held) {}

BadValueCopy::BadValueCopy(const std::type_info& held)
    : std::logic_error("fern: cannot copy a Value holding the move-only type " + type_name(held) +
                       "; move the Value instead") {}

namespace detail {

void throw_bad_value_cast(const std::type_info& wanted, const std::type_info& held) {
  throw BadValueCast(wanted, held);
}

void throw_bad_value_copy(const std::type_info& held) { throw BadValueCopy(held); }

bool same_value_type(const ValueOps* held, const std::type_info& wanted) noexcept {
  return *held->type == wanted;
}

}  // namespace detail
}  // namespace fern
