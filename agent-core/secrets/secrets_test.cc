#include "agent-core/secrets/secrets.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "rapidjson/document.h"

namespace dogwatch::secrets {
namespace {

// Every secret value used in these tests contains this marker, so one substring check proves that
// no value leaked into an error message.
constexpr const char* kSecretMarker = "s3cr3t";

// A private scratch directory holding backend scripts, removed at the end of each test.
class BackendDir {
 public:
  BackendDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "secrets_test.XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~BackendDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  // Writes a /bin/sh backend with the given body; chmod is explicit so the umask cannot interfere.
  std::string Script(const std::string& body, mode_t mode = 0700, const std::string& name = "backend.sh") {
    const std::string path = Path(name);
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << "#!/bin/sh\n" << body << "\n";
      REQUIRE(out.good());
    }
    REQUIRE(chmod(path.c_str(), mode) == 0);
    return path;
  }

  // A backend that ignores its input and prints `response` verbatim.
  std::string Responder(const std::string& response, mode_t mode = 0700) {
    const std::string response_path = Path("response.json");
    {
      std::ofstream out(response_path, std::ios::binary | std::ios::trunc);
      out << response;
      REQUIRE(out.good());
    }
    return Script("cat '" + response_path + "'", mode);
  }

  std::string Path(const std::string& name) const { return (path_ / name).string(); }

  std::string Read(const std::string& name) const {
    std::ifstream in(Path(name), std::ios::binary);
    std::stringstream content;
    content << in.rdbuf();
    return content.str();
  }

 private:
  std::filesystem::path path_;
};

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// Common assertions for every failure: the module prefix is present and no secret leaked.
void CheckCleanError(const absl::Status& status) {
  REQUIRE(!status.ok());
  CHECK_THAT(Message(status), Catch::StartsWith("secret backend: "));
  CHECK_THAT(Message(status), !Catch::Contains(kSecretMarker));
}

BackendOptions OptionsFor(const std::string& command) {
  BackendOptions options;
  options.command = command;
  options.timeout = absl::Seconds(10);
  return options;
}

const std::vector<std::string> kTwoHandles = {"db_pass", "api_key"};

TEST_CASE("Resolve runs the backend once and resolves every handle") {
  BackendDir dir;
  const std::string script = dir.Script(
      "cat > '" + dir.Path("request.json") + "'\n" +
      R"(printf '%s' '{"db_pass": {"value": "s3cr3t-one", "error": null}, "api_key": {"value": "s3cr3t-two"}}')");
  BackendOptions options = OptionsFor(script);
  options.timeout = absl::Seconds(7);

  auto resolved = Resolve(options, kTwoHandles);
  REQUIRE(resolved.ok());
  CHECK(resolved->size() == 2);
  CHECK(resolved->at("db_pass") == "s3cr3t-one");
  CHECK(resolved->at("api_key") == "s3cr3t-two");

  // The request the backend saw on stdin.
  const std::string request = dir.Read("request.json");
  rapidjson::Document document;
  document.Parse(request.c_str());
  REQUIRE(!document.HasParseError());
  REQUIRE(document.IsObject());
  CHECK(document.MemberCount() == 3);
  REQUIRE(document.HasMember("version"));
  REQUIRE(document["version"].IsString());
  CHECK(std::string(document["version"].GetString()) == "1.0");
  REQUIRE(document.HasMember("secrets"));
  REQUIRE(document["secrets"].IsArray());
  REQUIRE(document["secrets"].Size() == 2);
  REQUIRE(document["secrets"][0].IsString());
  REQUIRE(document["secrets"][1].IsString());
  CHECK(std::string(document["secrets"][0].GetString()) == "db_pass");
  CHECK(std::string(document["secrets"][1].GetString()) == "api_key");
  REQUIRE(document.HasMember("secret_backend_timeout"));
  REQUIRE(document["secret_backend_timeout"].IsInt64());
  CHECK(document["secret_backend_timeout"].GetInt64() == 7);
}

TEST_CASE("Resolve passes secret_backend_arguments and escapes handles in the request") {
  BackendDir dir;
  const std::string script =
      dir.Script("cat > '" + dir.Path("request.json") + "'\n" + "printf '%s\\n' \"$@\" > '" +
                 dir.Path("args.txt") + "'\n" + R"(printf '%s' '{"we\"ird\\": {"value": "s3cr3t"}}')");
  BackendOptions options = OptionsFor(script);
  options.arguments = {"--flag", "two words"};
  options.timeout = absl::Milliseconds(1500);

  auto resolved = Resolve(options, {"we\"ird\\"});
  REQUIRE(resolved.ok());
  CHECK(resolved->at("we\"ird\\") == "s3cr3t");
  CHECK(dir.Read("args.txt") == "--flag\ntwo words\n");

  rapidjson::Document document;
  const std::string request = dir.Read("request.json");
  document.Parse(request.c_str());
  REQUIRE(!document.HasParseError());
  REQUIRE(document["secrets"][0].IsString());
  CHECK(std::string(document["secrets"][0].GetString()) == "we\"ird\\");
  CHECK(document["secret_backend_timeout"].GetInt64() == 2);  // rounded up, never down
}

TEST_CASE("Resolve reports a backend error naming the handle but no value") {
  BackendDir dir;
  BackendOptions options = OptionsFor(
      dir.Responder(R"({"db_pass": {"value": "s3cr3t-one", "error": null},)"
                    R"( "api_key": {"value": "s3cr3t-two", "error": "access denied\nby policy"}})"));
  auto resolved = Resolve(options, kTwoHandles);
  CheckCleanError(resolved.status());
  CHECK_THAT(Message(resolved.status()), Catch::Contains("'api_key'"));
  CHECK_THAT(Message(resolved.status()), Catch::Contains("access denied\\nby policy"));
  CHECK_THAT(Message(resolved.status()), !Catch::Contains("db_pass"));
}

TEST_CASE("Resolve fails on a missing handle") {
  BackendDir dir;
  BackendOptions options =
      OptionsFor(dir.Responder(R"({"db_pass": {"value": "s3cr3t-one", "error": null}})"));
  auto resolved = Resolve(options, kTwoHandles);
  CheckCleanError(resolved.status());
  CHECK(absl::IsNotFound(resolved.status()));
  CHECK_THAT(Message(resolved.status()), Catch::Contains("'api_key'"));
  CHECK_THAT(Message(resolved.status()), Catch::Contains("missing from the response"));
}

TEST_CASE("Resolve fails on an empty value") {
  BackendDir dir;
  BackendOptions options = OptionsFor(
      dir.Responder(R"({"db_pass": {"value": "s3cr3t-one", "error": null}, "api_key": {"value": ""}})"));
  auto resolved = Resolve(options, kTwoHandles);
  CheckCleanError(resolved.status());
  CHECK_THAT(Message(resolved.status()), Catch::Contains("'api_key'"));
  CHECK_THAT(Message(resolved.status()), Catch::Contains("empty"));
}

TEST_CASE("Resolve fails on invalid JSON") {
  BackendDir dir;
  BackendOptions options = OptionsFor(dir.Responder(R"({"db_pass": {"value": "s3cr3t-one")"));
  auto resolved = Resolve(options, kTwoHandles);
  CheckCleanError(resolved.status());
  CHECK(absl::IsInvalidArgument(resolved.status()));
  CHECK_THAT(Message(resolved.status()), Catch::Contains("not valid JSON"));
}

TEST_CASE("Resolve fails when the output exceeds secret_backend_output_max_size") {
  BackendDir dir;
  BackendOptions options = OptionsFor(dir.Script("head -c 5000 /dev/zero | tr '\\0' s"));
  options.max_output_bytes = 1000;
  auto resolved = Resolve(options, kTwoHandles);
  CheckCleanError(resolved.status());
  CHECK(absl::IsResourceExhausted(resolved.status()));
  CHECK_THAT(Message(resolved.status()), Catch::Contains("output exceeds 1000 bytes"));
  CHECK_THAT(Message(resolved.status()), Catch::Contains("secret_backend_output_max_size"));
}

TEST_CASE("Resolve kills a backend that runs past secret_backend_timeout") {
  BackendDir dir;
  BackendOptions options = OptionsFor(dir.Script("sleep 30"));
  options.timeout = absl::Seconds(1);
  const auto start = std::chrono::steady_clock::now();
  auto resolved = Resolve(options, kTwoHandles);
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CheckCleanError(resolved.status());
  CHECK(absl::IsDeadlineExceeded(resolved.status()));
  CHECK_THAT(Message(resolved.status()), Catch::Contains("timed out after 1 s"));
  CHECK_THAT(Message(resolved.status()), Catch::Contains("secret_backend_timeout"));
  CHECK(elapsed < 5.0);
}

TEST_CASE("Resolve reports a failing backend with a bounded, sanitized stderr snippet") {
  BackendDir dir;
  SECTION("short stderr") {
    BackendOptions options = OptionsFor(dir.Script("printf 'vault sealed\\033[31m\\n' >&2\nexit 4"));
    auto resolved = Resolve(options, kTwoHandles);
    CheckCleanError(resolved.status());
    CHECK_THAT(Message(resolved.status()), Catch::Contains("exited with status 4"));
    CHECK_THAT(Message(resolved.status()), Catch::Contains("stderr: vault sealed\\x1b[31m"));
    CHECK_THAT(Message(resolved.status()), !Catch::Contains("\033"));
  }
  SECTION("long stderr is cut") {
    BackendOptions options = OptionsFor(dir.Script("head -c 10000 /dev/zero | tr '\\0' e >&2\nexit 1"));
    auto resolved = Resolve(options, kTwoHandles);
    CheckCleanError(resolved.status());
    const std::string message = Message(resolved.status());
    const size_t snippet_start = message.find("stderr: ");
    REQUIRE(snippet_start != std::string::npos);
    const std::string snippet = message.substr(snippet_start + 8);
    CHECK(snippet.size() <= 256);
    CHECK_THAT(snippet, Catch::EndsWith("..."));
  }
  SECTION("killed by a signal") {
    BackendOptions options = OptionsFor(dir.Script("kill -9 $$"));
    auto resolved = Resolve(options, kTwoHandles);
    CheckCleanError(resolved.status());
    CHECK_THAT(Message(resolved.status()), Catch::Contains("killed by signal 9"));
    CHECK_THAT(Message(resolved.status()), Catch::Contains("; stderr was empty"));
  }
}

TEST_CASE("Resolve refuses an executable with unsafe permissions") {
  BackendDir dir;
  const std::string ok_response =
      R"({"db_pass": {"value": "s3cr3t-one"}, "api_key": {"value": "s3cr3t-two"}})";

  SECTION("group-writable") {
    BackendOptions options = OptionsFor(dir.Responder(ok_response, 0770));
    auto resolved = Resolve(options, kTwoHandles);
    CheckCleanError(resolved.status());
    CHECK(absl::IsPermissionDenied(resolved.status()));
    const std::string message = Message(resolved.status());
    CHECK_THAT(message, Catch::Contains(options.command));
    CHECK_THAT(message, Catch::Contains("mode 0770"));
    CHECK_THAT(message, Catch::Contains("'group' or 'other' have permissions on it"));
    CHECK_THAT(message, Catch::Contains("owner uid " + std::to_string(geteuid())));
    CHECK_THAT(message, Catch::Contains("e.g. 0700 or 0500"));
  }
  SECTION("other-readable") {
    BackendOptions options = OptionsFor(dir.Responder(ok_response, 0704));
    auto resolved = Resolve(options, kTwoHandles);
    CheckCleanError(resolved.status());
    CHECK_THAT(Message(resolved.status()), Catch::Contains("mode 0704"));
  }
  SECTION("allow_group_exec accepts 0750") {
    BackendOptions options = OptionsFor(dir.Responder(ok_response, 0750));
    options.allow_group_exec = true;
    auto resolved = Resolve(options, kTwoHandles);
    REQUIRE(resolved.ok());
    CHECK(resolved->at("api_key") == "s3cr3t-two");
  }
  SECTION("allow_group_exec still refuses 0770") {
    BackendOptions options = OptionsFor(dir.Responder(ok_response, 0770));
    options.allow_group_exec = true;
    auto resolved = Resolve(options, kTwoHandles);
    CheckCleanError(resolved.status());
    CHECK_THAT(Message(resolved.status()), Catch::Contains("mode 0770"));
    CHECK_THAT(Message(resolved.status()), Catch::Contains("'group' can write to it"));
  }
  SECTION("allow_group_exec still refuses anything for other") {
    BackendOptions options = OptionsFor(dir.Responder(ok_response, 0751));
    options.allow_group_exec = true;
    CheckCleanError(Resolve(options, kTwoHandles).status());
  }
  SECTION("skip_permission_checks accepts 0777") {
    BackendOptions options = OptionsFor(dir.Responder(ok_response, 0777));
    options.skip_permission_checks = true;
    auto resolved = Resolve(options, kTwoHandles);
    REQUIRE(resolved.ok());
    CHECK(resolved->size() == 2);
  }
  SECTION("wrong owner") {
    BackendOptions options = OptionsFor(dir.Responder(ok_response, 0700));
    options.expected_owner = geteuid() + 1;
    auto resolved = Resolve(options, kTwoHandles);
    CheckCleanError(resolved.status());
    CHECK_THAT(Message(resolved.status()), Catch::Contains("wrong owner"));
    CHECK_THAT(Message(resolved.status()), Catch::Contains("owned by uid " + std::to_string(geteuid() + 1)));
  }
  SECTION("not executable by its owner") {
    BackendOptions options = OptionsFor(dir.Responder(ok_response, 0600));
    CheckCleanError(Resolve(options, kTwoHandles).status());
    CHECK_THAT(Message(Resolve(options, kTwoHandles).status()), Catch::Contains("owner cannot execute"));
  }
  SECTION("a directory") {
    BackendOptions options = OptionsFor(dir.Path(""));
    auto status = CheckExecutablePermissions(options);
    CheckCleanError(status);
    CHECK_THAT(Message(status), Catch::Contains("a directory"));
  }
  SECTION("missing file") {
    BackendOptions options = OptionsFor(dir.Path("nope"));
    auto status = CheckExecutablePermissions(options);
    CheckCleanError(status);
    CHECK(absl::IsNotFound(status));
    CHECK_THAT(Message(status), Catch::Contains("cannot stat"));
  }
}

TEST_CASE("Resolve with skipped checks still reports a nonexistent command clearly") {
  BackendDir dir;
  BackendOptions options = OptionsFor(dir.Path("missing-backend"));
  options.skip_permission_checks = true;
  auto resolved = Resolve(options, kTwoHandles);
  CheckCleanError(resolved.status());
  CHECK(absl::IsNotFound(resolved.status()));
  CHECK_THAT(Message(resolved.status()), Catch::Contains("cannot execute"));
  CHECK_THAT(Message(resolved.status()), Catch::Contains("missing-backend"));
}

TEST_CASE("Resolve removes trailing line breaks only when asked") {
  BackendDir dir;
  BackendOptions options =
      OptionsFor(dir.Responder(R"({"db_pass": {"value": "s3cr3t\r\n\n"}, "api_key": {"value": "a\nb\n"}})"));
  SECTION("kept by default") {
    auto resolved = Resolve(options, kTwoHandles);
    REQUIRE(resolved.ok());
    CHECK(resolved->at("db_pass") == "s3cr3t\r\n\n");
  }
  SECTION("removed") {
    options.remove_trailing_line_break = true;
    auto resolved = Resolve(options, kTwoHandles);
    REQUIRE(resolved.ok());
    CHECK(resolved->at("db_pass") == "s3cr3t");
    CHECK(resolved->at("api_key") == "a\nb");
  }
}

TEST_CASE("Resolve validates its options") {
  SECTION("no command") {
    auto resolved = Resolve(BackendOptions{}, kTwoHandles);
    CheckCleanError(resolved.status());
    CHECK_THAT(Message(resolved.status()), Catch::Contains("secret_backend_command is not set"));
  }
  SECTION("bad timeout") {
    BackendOptions options = OptionsFor("/bin/true");
    options.timeout = absl::ZeroDuration();
    CheckCleanError(Resolve(options, kTwoHandles).status());
  }
  SECTION("empty handle") { CheckCleanError(Resolve(OptionsFor("/bin/true"), {"a", ""}).status()); }
  SECTION("no handles means nothing to run") {
    auto resolved = Resolve(OptionsFor("/does/not/exist"), {});
    REQUIRE(resolved.ok());
    CHECK(resolved->empty());
  }
}

TEST_CASE("ParseBackendResponse accepts well-formed responses") {
  SECTION("extra handles are ignored") {
    auto parsed =
        ParseBackendResponse(R"( {"a": {"value": "s3cr3t-a"}, "zzz": {"value": "other"}} )", {"a"}, false);
    REQUIRE(parsed.ok());
    CHECK(parsed->size() == 1);
    CHECK(parsed->at("a") == "s3cr3t-a");
  }
  SECTION("empty error string means no error, as in the Datadog Agent") {
    auto parsed = ParseBackendResponse(R"({"a": {"value": "s3cr3t-a", "error": ""}})", {"a"}, false);
    REQUIRE(parsed.ok());
    CHECK(parsed->at("a") == "s3cr3t-a");
  }
  SECTION("escapes and embedded NUL characters in values survive") {
    auto parsed = ParseBackendResponse(R"({"a": {"value": "s3cr3t\u0000\u00e9\"x"}})", {"a"}, false);
    REQUIRE(parsed.ok());
    CHECK(parsed->at("a") == std::string("s3cr3t\0\xc3\xa9\"x", 11));
  }
}

TEST_CASE("ParseBackendResponse rejects malformed responses without leaking values") {
  struct Case {
    const char* name;
    std::string output;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"trailing garbage", R"({"a": {"value": "s3cr3t-a"}} x)", "not valid JSON"},
      {"two documents", R"({"a": {"value": "s3cr3t-a"}} {})", "not valid JSON"},
      {"embedded NUL after the document", std::string("{\"a\": {\"value\": \"s3cr3t\"}}\0x", 27), "NUL byte"},
      {"empty output", "", "not valid JSON"},
      {"not an object", R"(["s3cr3t-a"])", "must be a JSON object mapping handles to results, got array"},
      {"entry not an object", R"({"a": "s3cr3t-a"})",
       "entry for handle 'a' must be a JSON object, got string"},
      {"unrequested entry not an object", R"({"a": {"value": "s3cr3t-a"}, "b": 1})",
       "entry for handle 'b' must be a JSON object, got number"},
      {"duplicate handle", R"({"a": {"value": "s3cr3t-1"}, "a": {"value": "s3cr3t-2"}})", "more than once"},
      {"numeric value", R"({"a": {"value": 123456}})", "\"value\" must be a string, got number"},
      {"null value", R"({"a": {"value": null}})", "returned no \"value\""},
      {"no value", R"({"a": {"error": null}})", "returned no \"value\""},
      {"non-string error", R"({"a": {"value": "s3cr3t-a", "error": {"code": 1}}})",
       "must be a string or null"},
      {"error with value", R"({"a": {"value": "s3cr3t-a", "error": "denied"}})",
       "the backend reported: denied"},
      {"line breaks only, removed", R"({"a": {"value": "\r\n"}})", "empty"},
      {"invalid UTF-8", "{\"a\": {\"value\": \"s3cr3t\xff\"}}", "not valid JSON"},
      {"deeply nested", "{\"a\": {\"value\": \"s3cr3t\", \"x\": " + std::string(200000, '[') + "}}",
       "not valid JSON"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    auto parsed = ParseBackendResponse(c.output, {"a"}, /*remove_trailing_line_break=*/true);
    CheckCleanError(parsed.status());
    CHECK_THAT(Message(parsed.status()), Catch::Contains(c.expected));
    CHECK_THAT(Message(parsed.status()), !Catch::Contains("123456"));
  }
}

TEST_CASE("ParseBackendResponse survives deep but valid nesting") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto parsed = ParseBackendResponse("{\"a\": {\"value\": \"s3cr3t\", \"x\": " + deep + "}}", {"a"}, false);
  REQUIRE(parsed.ok());
  CHECK(parsed->at("a") == "s3cr3t");
}

TEST_CASE("ParseBackendResponse bounds the input size") {
  const std::string output = R"({"a": {"value": "s3cr3t-a"}})";
  CHECK(ParseBackendResponse(output, {"a"}, false, output.size()).ok());
  auto parsed = ParseBackendResponse(output, {"a"}, false, output.size() - 1);
  CheckCleanError(parsed.status());
  CHECK(absl::IsResourceExhausted(parsed.status()));
  CHECK_THAT(Message(parsed.status()), Catch::Contains("more than the " + std::to_string(output.size() - 1)));
}

TEST_CASE("ParseBackendResponse sanitizes and bounds backend-controlled text in errors") {
  const std::string long_error(5000, 'x');
  auto parsed = ParseBackendResponse("{\"a\": {\"error\": \"" + long_error + "\"}}", {"a"}, false);
  REQUIRE(!parsed.ok());
  CHECK(parsed.status().message().size() < 400);

  auto control = ParseBackendResponse(R"({"a\n\u001b": 5})", {"x"}, false);
  REQUIRE(!control.ok());
  CHECK_THAT(Message(control.status()), Catch::Contains("'a\\n\\x1b'"));
}

TEST_CASE("ParseEncHandle recognizes only the whole ENC[handle] form") {
  std::string handle;
  CHECK(ParseEncHandle("ENC[db_pass]", &handle));
  CHECK(handle == "db_pass");
  CHECK(ParseEncHandle(" \t ENC[my handle]\n", &handle));
  CHECK(handle == "my handle");
  CHECK(ParseEncHandle("ENC[a]b]", &handle));
  CHECK(handle == "a]b");
  CHECK(ParseEncHandle("ENC[x]", nullptr));

  handle = "unchanged";
  for (const char* value : {"", "ENC[]", "  ENC[]  ", "ENC[", "ENC[abc", "ENCabc]", "enc[abc]", "xENC[abc]",
                            "ENC[abc] x", "ENC[abc]]x", "prefix ENC[abc]", "ENC [abc]", "]"}) {
    INFO(value);
    CHECK_FALSE(ParseEncHandle(value, &handle));
  }
  CHECK(handle == "unchanged");
}

}  // namespace
}  // namespace dogwatch::secrets
