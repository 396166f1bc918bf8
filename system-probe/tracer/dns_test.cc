#include "system-probe/tracer/dns.h"

#include <catch2/catch.hpp>
#include <vector>

namespace dogwatch::sysprobe {
namespace {

std::vector<uint8_t> Question(std::initializer_list<std::string> labels, uint16_t qtype) {
  std::vector<uint8_t> out;
  for (const auto& label : labels) {
    out.push_back(static_cast<uint8_t>(label.size()));
    out.insert(out.end(), label.begin(), label.end());
  }
  out.push_back(0);
  out.push_back(static_cast<uint8_t>(qtype >> 8));
  out.push_back(static_cast<uint8_t>(qtype));
  out.push_back(0);
  out.push_back(1);
  return out;
}

TEST_CASE("a DNS question gives its lower-cased name and type") {
  auto bytes = Question({"Dogwatch-Test", "Example", "org"}, 28);
  auto q = ParseDnsQuestion(bytes);
  REQUIRE(q.ok());
  CHECK(q->name == "dogwatch-test.example.org");
  CHECK(q->query_type == 28);
  CHECK_FALSE(q->truncated);
}

TEST_CASE("a copy cut inside the name keeps what was read and says it is truncated") {
  auto bytes = Question({"abcdef", "example"}, 1);
  auto q = ParseDnsQuestion({bytes.data(), 10});
  REQUIRE(q.ok());
  CHECK(q->name == "abcdef.ex");  // 10 bytes: [6]abcdef[7]ex
  CHECK(q->truncated);
  CHECK(q->query_type == 0);
}

TEST_CASE("bad DNS questions are refused with a reason") {
  std::vector<uint8_t> pointer = {0xc0, 0x0c, 0, 1};
  CHECK(ParseDnsQuestion(pointer).status().message().find("compression pointer") != std::string::npos);
  std::vector<uint8_t> long_label = {64};
  long_label.resize(70, 'a');
  // A length byte over 63 has one of the two top bits set: a pointer or a reserved label type.
  CHECK(ParseDnsQuestion(long_label).status().message().find("reserved") != std::string::npos);
  std::vector<uint8_t> long_name;
  for (int i = 0; i < 5; ++i) {
    long_name.push_back(63);
    long_name.insert(long_name.end(), 63, 'x');
  }
  long_name.push_back(0);
  CHECK(ParseDnsQuestion(long_name).status().message().find("253") != std::string::npos);
}

TEST_CASE("unprintable name bytes are escaped, empty input is a truncated root") {
  std::vector<uint8_t> odd = {3, 'a', '.', 0x01, 0, 0, 1};
  auto q = ParseDnsQuestion(odd);
  REQUIRE(q.ok());
  CHECK(q->name == "a\\46\\1");
  CHECK(q->query_type == 1);
  auto empty = ParseDnsQuestion({});
  REQUIRE(empty.ok());
  CHECK(empty->truncated);
}

}  // namespace
}  // namespace dogwatch::sysprobe
