#include "exit_status.hpp"

namespace passthru_probe {
namespace {

int severity(passthru::Route route) noexcept {
  switch (route) {
    case passthru::Route::next_applet: return 0;
    case passthru::Route::external_flow: return 1;
    case passthru::Route::default_next: return 2;
    case passthru::Route::on_error: return 3;
    case passthru::Route::on_timeout: return 4;
    case passthru::Route::cancelled: return 5;
  }
  return 5;
}

}  // namespace

int exit_status(passthru::Route route) noexcept {
  switch (route) {
    case passthru::Route::next_applet: return 0;
    case passthru::Route::external_flow: return 3;
    case passthru::Route::default_next: return 4;
    case passthru::Route::on_error: return 5;
    case passthru::Route::on_timeout: return 6;
    case passthru::Route::cancelled: return kExitInternalFailure;
  }
  return kExitInternalFailure;
}

passthru::Route worse_route(passthru::Route a, passthru::Route b) noexcept {
  return severity(b) > severity(a) ? b : a;
}

}  // namespace passthru_probe
