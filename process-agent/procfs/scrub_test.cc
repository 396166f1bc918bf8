#include "process-agent/procfs/scrub.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace dogwatch::process {
namespace {

using Args = std::vector<std::string>;

Args ScrubDefault(const Args& args) {
  return CommandLineScrubber(CommandLineScrubber::Options{}).Scrub(args);
}

TEST_CASE("scrubber masks the value of --key=value, -key value and key:value", "[scrub]") {
  CHECK(ScrubDefault({"mysql", "--password=hunter2"}) == Args{"mysql", "--password=********"});
  CHECK(ScrubDefault({"mysql", "-password", "hunter2", "-h", "db"}) ==
        Args{"mysql", "-password", "********", "-h", "db"});
  CHECK(ScrubDefault({"app", "password:hunter2"}) == Args{"app", "password:********"});
  CHECK(ScrubDefault({"app", "password=hunter2"}) == Args{"app", "password=********"});
  CHECK(ScrubDefault({"app", "--api_key", "abc", "--port", "80"}) ==
        Args{"app", "--api_key", "********", "--port", "80"});
}

TEST_CASE("scrubber is case-insensitive and honours wildcards", "[scrub]") {
  CHECK(ScrubDefault({"app", "--PassWord=x"}) == Args{"app", "--PassWord=********"});
  // "*password*": the leading wildcard covers "--db-", the trailing one "_file".
  CHECK(ScrubDefault({"app", "--db-password_file", "/etc/pw"}) ==
        Args{"app", "--db-password_file", "********"});
  CHECK(ScrubDefault({"app", "--aws-secret-access-key=AKIA"}) ==
        Args{"app", "--aws-secret-access-key=********"});
  CHECK(ScrubDefault({"app", "--mysql_pwd=x"}) == Args{"app", "--mysql_pwd=********"});
  // Inner wildcards stop at '/': a path that merely contains the word is left alone.
  CHECK(ScrubDefault({"app", "--path/password=x"}) == Args{"app", "--path/password=x"});
  // "stripetoken" has no wildcard: it must be the whole key.
  CHECK(ScrubDefault({"app", "--stripetoken=x"}) == Args{"app", "--stripetoken=********"});
  CHECK(ScrubDefault({"app", "--mystripetoken=x"}) == Args{"app", "--mystripetoken=x"});
}

TEST_CASE("scrubber leaves the executable and unrelated arguments alone", "[scrub]") {
  CHECK(ScrubDefault({"--password=x"}) == Args{"--password=x"});  // nothing precedes argv[0]
  CHECK(ScrubDefault({"nginx", "-g", "daemon off;"}) == Args{"nginx", "-g", "daemon off;"});
  CHECK(ScrubDefault({}) == Args{});
  // A key with no delimiter after it has no value to hide.
  CHECK(ScrubDefault({"app", "--password"}) == Args{"app", "--password"});
}

TEST_CASE("scrubber masks every occurrence and quoted values, then splits on spaces like Datadog",
          "[scrub]") {
  CHECK(ScrubDefault({"app", "--password=a", "--secret", "b", "api_key:c"}) ==
        Args{"app", "--password=********", "--secret", "********", "api_key:********"});
  CHECK(ScrubDefault({"app", "--password", "\"two words\""}) == Args{"app", "--password", "********"});
  CHECK(ScrubDefault({"sh", "-c", "run --token x", "--password=y"}) ==
        Args{"sh", "-c", "run", "--token", "x", "--password=********"});
}

TEST_CASE("scrubber custom words, rejected words, disabled and strip_arguments", "[scrub]") {
  CommandLineScrubber::Options options;
  options.custom_sensitive_words = {"mytoken", "*hidden", "pre*", "a*z", "bad-word", "**x", "*"};
  CommandLineScrubber scrubber(options);
  CHECK(scrubber.rejected_words() == Args{"bad-word", "**x", "*"});
  CHECK(scrubber.Scrub({"app", "--MyToken", "v"}) == Args{"app", "--MyToken", "********"});
  CHECK(scrubber.Scrub({"app", "--very-hidden=v"}) == Args{"app", "--very-hidden=********"});
  CHECK(scrubber.Scrub({"app", "--hidden-not=v"}) == Args{"app", "--hidden-not=v"});
  CHECK(scrubber.Scrub({"app", "prefix:v"}) == Args{"app", "prefix:********"});
  CHECK(scrubber.Scrub({"app", "-abcz", "v"}) == Args{"app", "-abcz", "********"});

  CommandLineScrubber::Options disabled;
  disabled.enabled = false;
  CHECK(CommandLineScrubber(disabled).Scrub({"app", "--password=x"}) == Args{"app", "--password=x"});

  CommandLineScrubber::Options strip;
  strip.strip_arguments = true;
  strip.enabled = false;  // stripping wins regardless
  CommandLineScrubber stripper(strip);
  CHECK(stripper.Scrub({"/usr/bin/python3", "app.py", "--password=x"}) == Args{"/usr/bin/python3"});
  CHECK(stripper.Scrub({"postgres: writer process --x"}) == Args{"postgres:"});
  CHECK(stripper.Scrub({}) == Args{});
}

TEST_CASE("scrubber stays linear on hostile input", "[scrub]") {
  // 128 KiB of a key full of near-matches: the DP matcher is O(pattern × key), no backtracking.
  std::string key = "--";
  while (key.size() < 128 * 1024) key += "passwor";
  key += "d=v";
  Args out = ScrubDefault({"app", key});
  REQUIRE(out.size() == 2);
  CHECK(out[1].ends_with("d=********"));
}

TEST_CASE("ScrubProcess caches per pid and create time and resets after 25 cycles", "[scrub]") {
  CommandLineScrubber scrubber(CommandLineScrubber::Options{});
  Args args = {"app", "--password=x"};
  auto first = scrubber.ScrubProcess(10, 1000, args);
  auto again = scrubber.ScrubProcess(10, 1000, {"ignored", "--password=y"});
  CHECK(*first == Args{"app", "--password=********"});
  CHECK(again == first);  // served from the cache
  auto other = scrubber.ScrubProcess(10, 2000, {"new", "--secret=s"});
  CHECK(*other == Args{"new", "--secret=********"});
  auto counters = scrubber.cache_counters();
  CHECK(counters.hits == 1);
  CHECK(counters.misses == 2);
  CHECK(counters.entries == 2);
  for (int i = 0; i < 24; ++i) scrubber.IncrementCacheAge();
  CHECK(scrubber.cache_counters().entries == 2);
  scrubber.IncrementCacheAge();
  CHECK(scrubber.cache_counters().entries == 0);
  CHECK(scrubber.cache_counters().resets == 1);

  CommandLineScrubber::Options tiny;
  tiny.cache_max_entries = 2;
  CommandLineScrubber bounded(tiny);
  for (int pid = 1; pid <= 5; ++pid) bounded.ScrubProcess(pid, 0, args);
  CHECK(bounded.cache_counters().entries <= 2);
  CHECK(bounded.cache_counters().overflow_clears == 2);
}

}  // namespace
}  // namespace dogwatch::process
