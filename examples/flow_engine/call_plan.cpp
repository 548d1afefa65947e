#include "call_plan.hpp"

#include <cstdio>
#include <random>

namespace flow_engine {

namespace {

// Distinct for every index below 10^7: 7919 is coprime with 10.
std::string seven_digits(std::size_t index) {
  char digits[16];
  std::snprintf(digits, sizeof digits, "%07zu", (index * 7919 + 1234567) % 10000000);
  return digits;
}

// A caller from a mix of places: Indian landlines in Chennai (area code 44)
// and Delhi (11), Indian mobiles, Sri Lanka, the US, the UK, the UAE, France.
std::string caller_number(std::size_t index, int draw) {
  const std::string unique = seven_digits(index);
  if (draw < 15) return "+91441" + unique;
  if (draw < 25) return "+91111" + unique;
  if (draw < 65) return "+91981" + unique;
  if (draw < 73) return "+9477" + unique;
  if (draw < 83) return "+1415" + unique;
  if (draw < 90) return "+44201" + unique;
  if (draw < 95) return "+9714" + unique;
  return "+3311" + unique;
}

const char* order_status(int draw) {
  if (draw < 25) return "processing";
  if (draw < 60) return "shipped";
  if (draw < 75) return "out-for-delivery";
  if (draw < 95) return "delivered";
  return "cancelled";
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
long days_from_civil(int year, int month, int day) {
  year -= month <= 2 ? 1 : 0;
  const long era = (year >= 0 ? year : year - 399) / 400;
  const long year_of_era = year - era * 400;
  const long day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const long day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

// 0 = Sunday ... 6 = Saturday; 1970-01-01 was a Thursday.
int weekday(const LocalTime& time) {
  const long days = days_from_civil(time.year, time.month, time.day);
  return static_cast<int>(((days % 7) + 11) % 7);
}

bool public_holiday(const LocalTime& time) {
  return time.month == 1 && time.day == 26;  // Republic Day
}

}  // namespace

std::vector<PlannedCall> plan_calls(std::size_t count, std::size_t flows, std::chrono::milliseconds ramp,
                                    std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> percent(0, 99);
  std::uniform_int_distribution<int> day(0, 6);                    // the week of Monday 2024-01-22
  std::uniform_int_distribution<int> minute(7 * 60, 21 * 60 - 1);  // callers call by day
  std::uniform_int_distribution<long long> arrival(0, std::chrono::microseconds(ramp).count());
  std::vector<PlannedCall> plan(count);
  for (std::size_t i = 0; i < count; ++i) {
    PlannedCall& call = plan[i];
    call.index = i;
    call.flow = i % flows;
    char sid[24];
    std::snprintf(sid, sizeof sid, "FE%08zu", i);
    call.call_sid = sid;
    call.call_from = caller_number(i, percent(rng));
    call.local_time.day = 22 + day(rng);
    call.local_time.minute_of_day = minute(rng);
    char when[64];
    std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:00+05:30", call.local_time.year,
                  call.local_time.month, call.local_time.day, call.local_time.minute_of_day / 60,
                  call.local_time.minute_of_day % 60);
    call.current_time = when;

    const int typed = percent(rng);
    if (typed < 80) {
      call.keypad = std::to_string(10000 + (i * 7919 + 4242) % 90000);  // an order the shop has
    } else if (typed < 92) {
      call.keypad = "5" + seven_digits(i).substr(2);  // six digits: no order has as many
    } else {
      call.keypad = std::to_string(i % 1000);  // a slip of the finger: 1 to 3 digits
    }

    const int tier = percent(rng);
    call.tier = tier < 20   ? CrmTier::vip
                : tier < 65 ? CrmTier::regular
                : tier < 70 ? CrmTier::legacy
                            : CrmTier::unknown;
    const int fault = percent(rng);
    call.fault = fault < 2 ? Fault::slow : fault < 4 ? Fault::server_error : Fault::none;
    call.arrival = std::chrono::microseconds(arrival(rng));
  }
  return plan;
}

CustomerData customer_data(const std::vector<PlannedCall>& plan) {
  CustomerData data;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> percent(0, 99);
  for (const PlannedCall& call : plan) {
    if (call.tier != CrmTier::unknown) data.crm.emplace(call.call_from, call.tier);
    if (call.keypad.size() == 5) data.orders.emplace(call.keypad, order_status(percent(rng)));
    if (call.fault != Fault::none) data.faults.emplace(call.call_sid, call.fault);
  }
  return data;
}

const char* crm_answer(CrmTier tier) noexcept {
  switch (tier) {
    case CrmTier::vip: return "vip-connect";
    case CrmTier::regular: return "";
    case CrmTier::legacy: return "premium-desk";
    case CrmTier::unknown: return "new-customer";
  }
  return "";
}

std::string language_applet(const std::string& number) {
  const auto starts = [&number](const char* prefix) { return number.rfind(prefix, 0) == 0; };
  if (starts("+9144") || starts("+94")) return "tamil-greeting";
  if (starts("+91")) return "hindi-greeting";
  if (starts("+1") || starts("+44") || starts("+61")) return "english-greeting";
  return "";
}

std::optional<bool> department_open(const std::string& department, const LocalTime& time) {
  if (department == "support") return true;
  if (department != "sales") return std::nullopt;
  if (public_holiday(time)) return false;
  const int day = weekday(time);
  const int minute = time.minute_of_day;
  if (day >= 1 && day <= 5) return minute >= 9 * 60 + 30 && minute < 18 * 60;
  if (day == 6) return minute >= 10 * 60 && minute < 14 * 60;
  return false;
}

std::chrono::milliseconds database_latency(const std::string& call_sid) {
  std::uint32_t hash = 2166136261u;  // FNV-1a
  for (const char c : call_sid) hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u;
  return std::chrono::milliseconds(1 + hash % 15);
}

}  // namespace flow_engine
