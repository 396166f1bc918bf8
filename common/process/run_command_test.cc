#include "common/process/run_command.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

namespace dogwatch::process {
namespace {

// A private scratch directory holding the test scripts, removed at the end of each test.
class ScriptDir {
 public:
  ScriptDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "run_command_test.XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~ScriptDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  // Writes a /bin/sh script with the given body and mode; returns its path.
  std::string Script(const std::string& name, const std::string& body, mode_t mode = 0700) {
    const std::string path = (path_ / name).string();
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << "#!/bin/sh\n" << body << "\n";
      REQUIRE(out.good());
    }
    REQUIRE(chmod(path.c_str(), mode) == 0);
    return path;
  }

  std::string Path(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST_CASE("RunCommand echoes stdin back through stdout") {
  ScriptDir dir;
  RunCommandOptions options;
  options.argv = {dir.Script("echo.sh", "cat")};
  options.stdin_data = "hello\nworld";
  auto result = RunCommand(options);
  REQUIRE(result.ok());
  CHECK(result->exit_code == 0);
  CHECK(result->term_signal == 0);
  CHECK(result->stdout_data == "hello\nworld");
  CHECK(result->stderr_data.empty());
}

TEST_CASE("RunCommand streams input and output larger than a pipe buffer without deadlock") {
  ScriptDir dir;
  RunCommandOptions options;
  options.argv = {dir.Script("echo.sh", "cat")};
  options.stdin_data.assign(4 * 1024 * 1024, 'x');
  for (size_t i = 0; i < options.stdin_data.size(); i += 4096) options.stdin_data[i] = '\n';
  options.max_stdout_bytes = 8 * 1024 * 1024;
  options.timeout = absl::Seconds(20);
  auto result = RunCommand(options);
  REQUIRE(result.ok());
  CHECK(result->exit_code == 0);
  CHECK(result->stdout_data == options.stdin_data);
}

TEST_CASE("RunCommand passes arguments without a shell") {
  ScriptDir dir;
  RunCommandOptions options;
  options.argv = {dir.Script("args.sh", "printf '%s|' \"$@\""), "a b", "$(id)", "'; rm -rf /"};
  auto result = RunCommand(options);
  REQUIRE(result.ok());
  CHECK(result->stdout_data == "a b|$(id)|'; rm -rf /|");
}

TEST_CASE("RunCommand kills the child on timeout") {
  ScriptDir dir;
  RunCommandOptions options;
  options.argv = {dir.Script("sleep.sh", "sleep 30")};
  options.timeout = absl::Seconds(1);
  const auto start = std::chrono::steady_clock::now();
  auto result = RunCommand(options);
  const double elapsed = SecondsSince(start);
  REQUIRE(!result.ok());
  CHECK(absl::IsDeadlineExceeded(result.status()));
  CHECK_THAT(std::string(result.status().message()), Catch::Contains("timed out after 1 s"));
  CHECK_THAT(std::string(result.status().message()), Catch::Contains("sleep.sh"));
  CHECK(elapsed >= 0.9);
  CHECK(elapsed < 5.0);
}

TEST_CASE("RunCommand timeout also kills grandchildren that hold the output pipe") {
  ScriptDir dir;
  RunCommandOptions options;
  // The background sleep inherits stdout; without a process-group kill we would wait 30 s for EOF.
  options.argv = {dir.Script("bg.sh", "sleep 30 &\nsleep 30")};
  options.timeout = absl::Seconds(1);
  const auto start = std::chrono::steady_clock::now();
  auto result = RunCommand(options);
  REQUIRE(!result.ok());
  CHECK(absl::IsDeadlineExceeded(result.status()));
  CHECK(SecondsSince(start) < 5.0);
}

TEST_CASE("RunCommand fails when stdout exceeds its cap") {
  ScriptDir dir;
  RunCommandOptions options;
  options.max_stdout_bytes = 1000;

  SECTION("bounded output") { options.argv = {dir.Script("big.sh", "head -c 5000 /dev/zero")}; }
  SECTION("endless output is cut short, not waited for") {
    options.argv = {dir.Script("yes.sh", "yes")};
    options.timeout = absl::Seconds(20);
  }

  const auto start = std::chrono::steady_clock::now();
  auto result = RunCommand(options);
  REQUIRE(!result.ok());
  CHECK(absl::IsResourceExhausted(result.status()));
  CHECK_THAT(std::string(result.status().message()), Catch::Contains("output exceeds 1000 bytes"));
  CHECK(SecondsSince(start) < 5.0);
}

TEST_CASE("RunCommand accepts output exactly at the cap") {
  ScriptDir dir;
  RunCommandOptions options;
  options.max_stdout_bytes = 1000;
  options.argv = {dir.Script("exact.sh", "head -c 1000 /dev/zero")};
  auto result = RunCommand(options);
  REQUIRE(result.ok());
  CHECK(result->stdout_data.size() == 1000);
}

TEST_CASE("RunCommand truncates stderr at its cap without failing") {
  ScriptDir dir;
  RunCommandOptions options;
  options.max_stderr_bytes = 100;
  options.argv = {dir.Script("noisy.sh", "head -c 200000 /dev/zero | tr '\\0' e >&2\necho ok")};
  auto result = RunCommand(options);
  REQUIRE(result.ok());
  CHECK(result->stdout_data == "ok\n");
  CHECK(result->stderr_data == std::string(100, 'e'));
  CHECK(result->stderr_truncated);
}

TEST_CASE("RunCommand reports a nonexistent executable clearly") {
  ScriptDir dir;
  RunCommandOptions options;
  options.argv = {dir.Path("does-not-exist")};
  auto result = RunCommand(options);
  REQUIRE(!result.ok());
  CHECK(absl::IsNotFound(result.status()));
  CHECK_THAT(std::string(result.status().message()), Catch::Contains("cannot execute"));
  CHECK_THAT(std::string(result.status().message()), Catch::Contains("does-not-exist"));
  CHECK_THAT(std::string(result.status().message()), Catch::Contains("No such file or directory"));
}

TEST_CASE("RunCommand reports a non-executable file as permission denied") {
  ScriptDir dir;
  RunCommandOptions options;
  options.argv = {dir.Script("noexec.sh", "echo hi", 0600)};
  auto result = RunCommand(options);
  REQUIRE(!result.ok());
  CHECK(absl::IsPermissionDenied(result.status()));
  CHECK_THAT(std::string(result.status().message()), Catch::Contains("noexec.sh"));
}

TEST_CASE("RunCommand reports exit codes and signals in the result") {
  ScriptDir dir;
  RunCommandOptions options;
  SECTION("nonzero exit") {
    options.argv = {dir.Script("fail.sh", "echo out; echo err >&2; exit 3")};
    auto result = RunCommand(options);
    REQUIRE(result.ok());
    CHECK(result->exit_code == 3);
    CHECK(result->term_signal == 0);
    CHECK(result->stdout_data == "out\n");
    CHECK(result->stderr_data == "err\n");
  }
  SECTION("killed by a signal") {
    options.argv = {dir.Script("kill.sh", "kill -9 $$")};
    auto result = RunCommand(options);
    REQUIRE(result.ok());
    CHECK(result->exit_code == -1);
    CHECK(result->term_signal == SIGKILL);
  }
}

TEST_CASE("RunCommand copes with a child that closes stdin without reading a large input") {
  ScriptDir dir;
  RunCommandOptions options;
  options.stdin_data.assign(8 * 1024 * 1024, 'y');
  options.timeout = absl::Seconds(20);

  SECTION("closes stdin at once") { options.argv = {dir.Script("closer.sh", "exec 0<&-\necho done")}; }
  SECTION("ignores stdin and exits later") {
    options.argv = {dir.Script("ignorer.sh", "sleep 0.3\necho done")};
  }

  const auto start = std::chrono::steady_clock::now();
  auto result = RunCommand(options);
  REQUIRE(result.ok());
  CHECK(result->exit_code == 0);
  CHECK(result->stdout_data == "done\n");
  CHECK(SecondsSince(start) < 5.0);
}

TEST_CASE("RunCommand gives the child a minimal environment") {
  ScriptDir dir;
  REQUIRE(setenv("DOGWATCH_RUN_COMMAND_TEST_LEAK", "leaked", 1) == 0);
  RunCommandOptions options;
  options.argv = {dir.Script("env.sh", "env")};

  SECTION("default is PATH only") {
    auto result = RunCommand(options);
    REQUIRE(result.ok());
    CHECK_THAT(result->stdout_data, Catch::Contains("PATH=/usr/bin:/bin\n"));
    CHECK_THAT(result->stdout_data, !Catch::Contains("DOGWATCH_RUN_COMMAND_TEST_LEAK"));
  }
  SECTION("caller-supplied environment replaces it") {
    options.env = std::vector<std::string>{"PATH=/bin", "FOO=bar"};
    auto result = RunCommand(options);
    REQUIRE(result.ok());
    CHECK_THAT(result->stdout_data, Catch::Contains("FOO=bar\n"));
    CHECK_THAT(result->stdout_data, Catch::Contains("PATH=/bin\n"));
    CHECK_THAT(result->stdout_data, !Catch::Contains("DOGWATCH_RUN_COMMAND_TEST_LEAK"));
  }
  unsetenv("DOGWATCH_RUN_COMMAND_TEST_LEAK");
}

TEST_CASE("RunCommand does not leak the agent's descriptors into the child") {
  ScriptDir dir;
  // Deliberately inheritable (no O_CLOEXEC), as careless code elsewhere might leave one.
  const int devnull = open("/dev/null", O_RDONLY);
  REQUIRE(devnull >= 0);
  const int leaked = fcntl(devnull, F_DUPFD, 50);
  REQUIRE(leaked >= 50);
  close(devnull);

  RunCommandOptions options;
  options.argv = {dir.Script("fds.sh", "if [ -e /proc/$$/fd/$1 ]; then echo open; else echo closed; fi"),
                  std::to_string(leaked)};
  auto result = RunCommand(options);
  close(leaked);
  REQUIRE(result.ok());
  CHECK(result->stdout_data == "closed\n");
}

TEST_CASE("RunCommand does not let the child inherit an ignored SIGPIPE") {
  ScriptDir dir;
  struct sigaction ignore {};
  struct sigaction saved {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  REQUIRE(sigaction(SIGPIPE, &ignore, &saved) == 0);

  RunCommandOptions options;
  // `yes` dies of SIGPIPE when head stops reading, unless SIGPIPE is ignored (then it loops on EPIPE
  // errors and exits with status 1 after printing a write error).
  options.argv = {dir.Script("pipe.sh", "yes | head -c 10 >/dev/null\necho done")};
  auto result = RunCommand(options);
  sigaction(SIGPIPE, &saved, nullptr);
  REQUIRE(result.ok());
  CHECK(result->stdout_data == "done\n");
  CHECK(result->stderr_data.empty());
}

TEST_CASE("RunCommand rejects invalid options") {
  RunCommandOptions options;
  SECTION("no argv") {}
  SECTION("empty executable") { options.argv = {""}; }
  SECTION("NUL in an argument") { options.argv = {"/bin/echo", std::string("a\0b", 3)}; }
  SECTION("non-positive timeout") {
    options.argv = {"/bin/true"};
    options.timeout = absl::ZeroDuration();
  }
  auto result = RunCommand(options);
  REQUIRE(!result.ok());
  CHECK(absl::IsInvalidArgument(result.status()));
}

}  // namespace
}  // namespace dogwatch::process
